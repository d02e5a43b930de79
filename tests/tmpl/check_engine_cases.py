#!/usr/bin/env python3
"""check_engine_cases.py — checks tests/tmpl/engine_cases.json against Python's Jinja2 configured the
way transformers renders chat templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, its own tojson, raise_exception). Every "expected" must be exactly what Jinja2 renders,
and every "error" case must make Jinja2 fail too (except those marked "unsupported": constructs
Jinja2 has that this engine rejects by name), so the C test (tests/unit/test_tmpl_engine.c) holds
the engine to real Jinja semantics rather than to our own guesses.

    python3 tests/tmpl/check_engine_cases.py          # verify (needs python3-jinja2)
    python3 tests/tmpl/check_engine_cases.py --fill   # compute "expected" for cases lacking it

Registered as the test tmpl_jinja2 (python3-jinja2 comes from tools/deps.sh); exits 77 when Jinja2 is
missing."""
import json
import os
import sys
from datetime import datetime

try:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("python3-jinja2 is not installed")
    sys.exit(77)

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_cases.json")


class Generation(jinja2.ext.Extension):
    """transformers' {% generation %} block (AssistantTracker): renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Generation])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def render(env, case):
    try:
        return env.from_string(case["template"]).render(**case["context"]), None
    except Exception as e:  # any Jinja2 failure counts as "errors"
        return None, f"{type(e).__name__}: {e}"


def main():
    cases = json.load(open(PATH, encoding="utf-8"))
    env, bad = make_env(), 0
    for case in cases:
        out, err = render(env, case)
        if case.get("unsupported"):
            print(f"{case['name']}: deliberately unsupported here (Jinja2: {out!r})")
        elif "error" in case:
            if err is None:
                bad += 1
                print(f"{case['name']}: Jinja2 renders {out!r}, the case expects an error")
        elif err is not None:
            bad += 1
            print(f"{case['name']}: Jinja2 fails ({err}), the case expects a render")
        elif "--fill" in sys.argv and "expected" not in case:
            case["expected"] = out
        elif case.get("expected") != out:
            bad += 1
            print(f"{case['name']}: expected {case.get('expected')!r}, Jinja2 renders {out!r}")
    if "--fill" in sys.argv:
        with open(PATH, "w", encoding="utf-8") as f:
            json.dump(cases, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print(f"{len(cases)} cases, {bad} disagree with Jinja2 {jinja2.__version__}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
