#!/usr/bin/env python3
"""unitexec.py UNIT INSTANCE CONFDIR — prints, NUL-separated, the command systemd would run for the
unit's ExecStart: `env VAR=value... BINARY ARGS...`. It follows systemd's rules for what our units
use: EnvironmentFile= lines (a leading '-' means optional; later files override earlier ones; '#' and
';' comments; quotes around values removed), with /etc/pdserve/ read from CONFDIR instead; the %i
specifier; `${VAR}` replaced inside a word; a word that is exactly `$VAR` split at whitespace into
zero or more words. Used by the deploy tests to start daemons exactly as their units would."""
import re
import shlex
import sys


def read_env(path, env):
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value


def main():
    unit, instance, confdir = sys.argv[1:4]
    env, exec_start = {}, None
    for line in open(unit, encoding="utf-8"):
        line = line.strip().replace("%i", instance)
        if line.startswith("EnvironmentFile="):
            path = line.split("=", 1)[1]
            optional = path.startswith("-")
            path = path.lstrip("-").replace("/etc/pdserve/", confdir.rstrip("/") + "/")
            try:
                read_env(path, env)
            except FileNotFoundError:
                if not optional:
                    sys.exit(f"unitexec: {unit}: EnvironmentFile {path} is missing")
        elif line.startswith("ExecStart="):
            exec_start = line.split("=", 1)[1]
    if exec_start is None:
        sys.exit(f"unitexec: {unit} has no ExecStart=")
    argv = []
    for word in shlex.split(exec_start):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv += env.get(whole.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    out = ["env"] + [f"{k}={v}" for k, v in env.items()] + argv
    sys.stdout.write("\0".join(out) + "\0")


main()
