#!/bin/sh
# Slotdeck slot launcher: dtach runs it inside the slot's terminal.
# usage: slot-launch.sh SLOT_DIR PROGRAM [ARGUMENT...]
#
# PM2 gives every child its daemon's whole environment and its IPC channel (fd 3): start over with an empty
# environment and without that descriptor, so the slot's program sees only the slot's own variables.
if [ "${SLOTDECK_LAUNCHER_CLEAN:-}" != 1 ]; then
  exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  exec /usr/bin/env -i SLOTDECK_LAUNCHER_CLEAN=1 PATH=/usr/local/bin:/usr/bin:/bin /bin/sh "$0" "$@"
fi
unset SLOTDECK_LAUNCHER_CLEAN
slot_dir=$1
shift

# A new terminal is 0x0 until a client sets its size, and dtach drops output while no client is attached. The
# agent sets the size as soon as it attaches, so wait for that before starting the program: none of the
# program's first output is lost. Without an agent, start anyway after 10 s.
tries=0
while [ "$(stty size 2>/dev/null)" = "0 0" ] && [ "$tries" -lt 150 ]; do
  if [ "$tries" -lt 50 ]; then sleep 0.01; else sleep 0.1; fi
  tries=$((tries + 1))
done
. "$slot_dir/env.sh"
if [ "$(stty size 2>/dev/null)" = "0 0" ]; then
  stty cols "${SLOTDECK_COLS:-120}" rows "${SLOTDECK_ROWS:-32}" 2>/dev/null
fi

# Ctrl-C and Ctrl-\ are for the program; the launcher stays to record how the program ended. (A trap that runs
# a command, unlike an ignored signal, is reset to the default in the program.)
trap : INT QUIT
"$@"
status=$?
printf '%s %s\n' "$status" "$(date +%s)" >>"$slot_dir/last-exit"
printf '\r\n\033[2m[slotdeck] %s exited with status %s\033[0m\r\n' "$1" "$status"
exit "$status"
