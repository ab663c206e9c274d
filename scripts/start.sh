#!/usr/bin/env bash
# The main job: set up (idempotently), then run the Slotdeck panel with "This computer" ready.
# The Electron window where Electron's binary is installed; browser mode (the same app in your browser) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh start
if node -e "require('fs').accessSync(require('electron'))" >/dev/null 2>&1; then
  echo "Starting the Slotdeck desktop app (Electron)."
  exec npx electron .
fi
echo "Electron's binary is not installed on this machine, so Slotdeck runs in browser mode."
exec node out/main/browser.js
