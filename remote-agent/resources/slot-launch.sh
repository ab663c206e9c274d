#!/bin/sh
# Slotdeck slot launcher: dtach runs it inside the slot's terminal.
# usage: slot-launch.sh ENV_FILE EXIT_FILE
#   ENV_FILE (written by the agent) exports the slot's variables, sets slot_work_dir and, with `set --`, the program
#   and its arguments; EXIT_FILE gets a line "<status> <epoch seconds>" each time the program ends.
#
# PM2 gives every child its daemon's whole environment and its IPC channel (fd 3): start over with an empty
# environment and without that descriptor, so the slot's program sees only the slot's own variables.
if [ "${SLOTDECK_LAUNCHER_CLEAN:-}" != 1 ]; then
  exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  exec /usr/bin/env -i SLOTDECK_LAUNCHER_CLEAN=1 SLOTDECK_SOCKET="${SLOTDECK_SOCKET:-}" \
    PATH=/usr/local/bin:/usr/bin:/bin /bin/sh "$0" "$@"
fi
socket=$SLOTDECK_SOCKET
unset SLOTDECK_LAUNCHER_CLEAN SLOTDECK_SOCKET
env_file=$1
exit_file=$2
slot_work_dir=
slot_isolated=
set --
. "$env_file"

# On an isolated host the slot runs as its own account: the agent reaches the socket dtach made (0600, ours) only
# once it is opened to it; its folder admits just this account and the agent. The agent may already have taken the
# socket from s/ into its own folder (the one above): then it is there.
if [ "$slot_isolated" = 1 ] && [ -n "$socket" ]; then
  chmod 0666 "$socket" 2>/dev/null || chmod 0666 "${socket%/s/*}/${socket##*/}"
fi

# A new terminal is 0x0 until a client sets its size, and dtach drops output while no client is attached. The
# agent sets the size as soon as it attaches, so wait for that before starting the program: none of the
# program's first output is lost. Without an agent, start anyway after 10 s.
tries=0
while [ "$(stty size 2>/dev/null)" = "0 0" ] && [ "$tries" -lt 150 ]; do
  if [ "$tries" -lt 50 ]; then sleep 0.01; else sleep 0.1; fi
  tries=$((tries + 1))
done
if [ "$(stty size 2>/dev/null)" = "0 0" ]; then
  stty cols "${SLOTDECK_COLS:-120}" rows "${SLOTDECK_ROWS:-32}" 2>/dev/null
fi

# The home and work folders are private to whoever runs the slot. A new home starts like a new user's: the
# distribution's skeleton files (shell rc and profile).
umask 077
if [ ! -d "$HOME" ]; then
  mkdir -p "$HOME" && cp -R /etc/skel/. "$HOME"/ 2>/dev/null
fi
mkdir -p "$HOME/.claude" "$slot_work_dir" 2>/dev/null
umask 022
cd "$slot_work_dir" 2>/dev/null || cd "$HOME" || cd /

# Ctrl-C and Ctrl-\ are for the program; the launcher stays to record how the program ended. (A trap that runs
# a command, unlike an ignored signal, is reset to the default in the program.)
trap : INT QUIT
"$@"
status=$?
(umask 077 && printf '%s %s\n' "$status" "$(date +%s)" >>"$exit_file")
printf '\r\n\033[2m[slotdeck] %s exited with status %s\033[0m\r\n' "$1" "$status"
exit "$status"
