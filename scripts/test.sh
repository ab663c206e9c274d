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
# Everything below runs with a real Secret Service, so that secrets go through a real keychain.
keyring=(bash scripts/with-keyring.sh)
step "unit tests"
"${keyring[@]}" npx vitest run --project unit
step "integration tests (real PM2, dtach, PTYs, SQLite, sshd)"
"${keyring[@]}" npx vitest run --project integration
step "browser tests (Chromium against browser mode)"
"${keyring[@]}" npx vitest run --project e2e
