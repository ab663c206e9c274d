#!/usr/bin/env bash
# Every check and test, as CI runs them: set up (idempotently), then lint, types, unit, integration, browser.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "lint"
npm run --silent lint
npm run --silent format:check
step "types"
npm run --silent typecheck
step "unit tests"
npx vitest run --project unit
step "integration tests (real PM2, dtach, PTYs, SQLite)"
npx vitest run --project integration
step "browser tests (Chromium)"
npx vitest run --project e2e
