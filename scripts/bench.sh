#!/usr/bin/env bash
# npm run bench [-- <suite>...]: builds what changed (the suites run the built agent and panel), then runs the
# benchmark suites (all by default) and writes bench/results/<suite>.json. npm run figures writes the README table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test >/dev/null
bash scripts/build-if-changed.sh
exec npx tsx bench/run.ts "$@"
