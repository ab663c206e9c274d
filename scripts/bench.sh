#!/usr/bin/env bash
# npm run bench -- <suite>: runs one benchmark suite and writes bench/results/<suite>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test >/dev/null
exec npx tsx bench/run.ts "$@"
