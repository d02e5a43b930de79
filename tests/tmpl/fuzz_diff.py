#!/usr/bin/env python3
"""fuzz_diff.py — differential test of the template engine against Python's Jinja2 (configured as
transformers configures it, see check_engine_cases.py): generates random templates from a fixed seed —
nested if/elif/else, for loops with filters/else/break, set, namespace, block set, macros with keyword
arguments, whitespace control, and random expressions over filters, tests, methods, slices and
operators — renders each with `$BUILD/pdserve-chat-template --raw` and with Jinja2, and requires the
same output, or an error from both. Random combinations find what hand-written cases do not (this
is how Jinja's test-argument parsing, round()'s int results and `false is number` were found).

    BUILD=build python3 tests/tmpl/fuzz_diff.py [N] [SEED]     (default 600 templates, seed 1)

Registered as tmpl_fuzz_diff with 400 templates; other seeds explore further.

Each Jinja2 render gets a fresh copy of the context: Jinja2 3.1.6 was seen appending a block's output
to a context list (seed 7), which must not leak into the next case.

Exits 77 when Jinja2 is missing."""
import copy
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_engine_cases import make_env  # exits 77 without Jinja2
CONTEXT = {"x": "ex", "y": 2, "l": [1, "two", None], "d": {"a": 1, "b": "B"}, "s": "str",
           "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": " U é "},
                        {"role": "assistant", "content": "A\nB"}]}
VALUES = ["x", "y", "l", "d", "s", "ns.v", "loop.index", "loop.first", "loop.last", "loop.length", "i", "k",
          "1", "'a'", "none", "[1, 'b']", "m.role", "m.content", "messages[0].role", "messages[-1]['content']",
          "messages|length", "d.a", "d['b']", "s[1:]", "l[::-1]", "(1, 2)", "3.5", "-2", "true", "0", "''"]
OPS = ["~", "+", "-", "*", "/", "//", "%", "==", "!=", "<", ">=", "and", "or", "in", "not in"]
FILTERS = ["length", "string", "first", "last", "trim", "upper", "lower", "title", "capitalize", "tojson",
           "default(0)", "default('d', true)", "list", "join(', ')", "items|list", "replace('a', 'b')", "int",
           "float", "abs", "round", "unique|list", "sort", "reverse|list", "tojson(indent=1)", "e",
           "selectattr('role', 'equalto', 'user')|list", "map(attribute='role')|list", "select|list",
           "dictsort", "sum", "min", "max", "indent(2)", "count", "safe"]
METHODS = ["strip()", "split()", "split('t')", "upper()", "startswith('a')", "endswith('r')",
           "replace('s', 'S')", "get('a')", "items()", "lstrip('s')", "title()", "find('t')", "count('t')",
           "index(1)", "isdigit()", "isalpha()", "rfind('t')", "islower()"]
TESTS = ["defined", "undefined", "none", "string", "mapping", "iterable", "number", "integer", "true", "false",
         "odd", "even", "divisibleby 2", "eq 1", "in [1, 2]", "lower", "upper", "sequence"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def expr(self, d=0):
        r, k = self.r, self.r.random()
        if d > 2 or k < 0.35:
            return r.choice(VALUES)
        if k < 0.55:
            return f"({self.expr(d + 1)} {r.choice(OPS)} {self.expr(d + 1)})"
        if k < 0.7:
            return f"{self.expr(d + 1)}|{r.choice(FILTERS)}"
        if k < 0.8:
            return f"({self.expr(d + 1)} if {self.expr(d + 1)} else {self.expr(d + 1)})"
        if k < 0.9:
            return f"({self.expr(d + 1)}).{r.choice(METHODS)}"
        return f"({self.expr(d + 1)} is {r.choice(['not ', ''])}{r.choice(TESTS)})"

    def stmt(self, d=0):
        r, k = self.r, self.r.random()
        ws, we = r.choice(["", "-", "", "+"]), r.choice(["", "-", ""])
        nl = r.choice(["", "\n", "\n  ", " ", "\t"])
        if d > 2 or k < 0.3:
            return f"{nl}{{{{{'' if ws == '+' else ws} {self.expr()} {we}}}}}"
        if k < 0.42:
            return f"{nl}{{%{ws} set {r.choice(['x', 'y', 'k'])} = {self.expr()} {we}%}}"
        if k < 0.5:
            return f"{nl}{{%{ws} set ns.v = {self.expr()} {we}%}}"
        if k < 0.65:
            return (f"{nl}{{%{ws} if {self.expr()} {we}%}}{self.body(d + 1)}{nl}{{% elif {self.expr()} %}}"
                    f"{self.body(d + 1)}{{% else %}}{self.body(d + 1)}{{% endif %}}")
        if k < 0.8:
            it = r.choice(["messages", "l", "range(3)", "d", "s", "d.items()", "messages[1:]", "messages[::-1]"])
            target = "k, v" if "items" in it else r.choice(["i", "m"])
            cond = r.choice(["", "if i", "if k is defined"])
            return (f"{nl}{{%{ws} for {target} in {it} {cond}{we}%}}{self.body(d + 1)}"
                    f"{{% if loop.index > 2 %}}{{% break %}}{{% endif %}}{{% else %}}empty{{% endfor %}}")
        if k < 0.88:
            return (f"{nl}{{% macro m{d}(a, b='z') %}}[{{{{ a }}}}{{{{ b }}}}{self.body(d + 1)}]{{% endmacro %}}"
                    f"{{{{ m{d}({self.expr()}) }}}}{{{{ m{d}(b={self.expr()}, a=1) }}}}")
        if k < 0.93:
            return f"{nl}{{% set blk %}}{self.body(d + 1)}{{% endset %}}<{{{{ blk|trim }}}}>"
        return f"{nl}text {r.choice(['x', 'é', '{', '}', '%', '#'])} {nl}"

    def body(self, d):
        return "".join(self.stmt(d) for _ in range(self.r.randint(1, 3)))

    def template(self):
        return "{% set ns = namespace(v=0) %}" + self.body(0)


def render_c(binary, tmpdir, template):
    path = os.path.join(tmpdir, "t.j2")
    with open(path, "w", encoding="utf-8") as f:
        f.write(template)
    p = subprocess.run([binary, "--raw", path, os.path.join(tmpdir, "ctx.json")], capture_output=True)
    return (p.stdout.decode("utf-8"), None) if p.returncode == 0 else (None, p.stderr.decode("utf-8", "replace"))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    binary = os.path.join(os.environ.get("BUILD", "build"), "pdserve-chat-template")
    env, gen, bad, renders = make_env(), Gen(seed), 0, 0
    with tempfile.TemporaryDirectory() as tmpdir:
        json.dump(CONTEXT, open(os.path.join(tmpdir, "ctx.json"), "w"))
        for i in range(n):
            t = gen.template()
            c_out, c_err = render_c(binary, tmpdir, t)
            try:
                py_out, py_err = env.from_string(t).render(**copy.deepcopy(CONTEXT)), None  # fresh: see below
            except Exception as e:  # any Jinja2 failure
                py_out, py_err = None, f"{type(e).__name__}: {e}"
            renders += py_out is not None
            crashed = c_err is not None and ("Sanitizer" in c_err or "runtime error:" in c_err)
            if c_out != py_out or crashed:
                bad += 1
                print(f"case {i}: {t!r}\n  engine: {c_out!r} {c_err or ''}\n  Jinja2: {py_out!r} {py_err or ''}")
    print(f"{n} random templates (seed {seed}), {renders} rendered by Jinja2, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
