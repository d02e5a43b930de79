#!/bin/sh
# Install the Debian packages pdserve builds, tests and runs with; a no-op when all are present.
# Used by `make deps` (and so by `make run` and `make test`). `deps.sh deploy` also installs what the
# booted deployment tests need (`make test-deploy`): debootstrap and systemd-nspawn.
set -eu
PKGS="build-essential pkg-config libuv1-dev node-llhttp libucx-dev ucx-utils libopenblas-dev \
libjansson-dev libpcre2-dev libsystemd-dev python3 python3-numpy python3-jinja2 iproute2 \
clang libclang-rt-14-dev gnuplot-nox systemd wrk curl"
[ "${1:-}" = deploy ] && PKGS="$PKGS debootstrap systemd-container"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm (test references: HF tokenizers and Jinja, the openai client) may come from
# NodeSource rather than Debian; Debian's only where there is none at all.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
