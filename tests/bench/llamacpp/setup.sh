#!/bin/sh
# Installs node-llama-cpp (pinned by package-lock.json; its prebuilt CPU binary for this platform), the
# baseline `make bench-engine` measures pdserve against. Only the benchmark needs it, so `make test`
# does not install it. A no-op when node_modules matches the lock file.
set -eu
cd "$(dirname "$0")"
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.pdserve-lock; then
    exit 0
fi
# npm install, not npm ci: the lock holds only the platform packages the registry served for this
# machine (npm ci refuses a lock without the other platforms' optional packages); install still takes
# every version from the lock. SKIP_DOWNLOAD: use the prebuilt binary, never build llama.cpp.
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.pdserve-lock
