#!/usr/bin/env bash
# The main job: set up (idempotently), then run the Slotdeck panel with "This computer" ready.
# The Electron window where Electron's binary is installed; browser mode (the same app in your browser) otherwise.
#
# Stopping: Ctrl-C in a terminal signals every process of the foreground group, but a process manager, an IDE's stop
# button or `kill -INT <npm's pid>` signals npm alone, and npm passes it to its one child only. So nothing between npm
# and the panel may sit in the way: package.json's start script execs this script, this script stops its setup's
# whole process tree on a signal, and then execs the panel, which stops its local agent itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Signals every descendant of a process, deepest first (pgrep -P works on Linux and macOS).
signal_tree() {
  local signal=$1 pid=$2 child
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do signal_tree "$signal" "$child"; done
  kill "-$signal" "$pid" 2>/dev/null || true
}

setup_pid=""
on_signal() {
  trap - INT TERM
  [ -n "$setup_pid" ] && signal_tree TERM "$setup_pid"
  echo "Stopped before Slotdeck started." >&2
  exit "$1" # 128 + the signal's number, as a shell reports a command a signal ended
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
# In the background so that a signal interrupts `wait` at once (a foreground command would be waited for first).
bash scripts/setup.sh start &
setup_pid=$!
wait "$setup_pid"
setup_pid=""
trap - INT TERM

if node -e "require('fs').accessSync(require('electron'))" >/dev/null 2>&1; then
  echo "Starting the Slotdeck desktop app (Electron)."
  # Not through npx: one more npm in between would stand between the signal and the app.
  exec node_modules/.bin/electron .
fi
echo "Electron's binary is not installed on this machine, so Slotdeck runs in browser mode."
exec node out/main/browser.js
