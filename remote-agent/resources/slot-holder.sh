#!/bin/sh
# Slotdeck slot holder: PM2 runs this for each slot (on an isolated host, through slotdeck-helper as the slot's own
# account); it becomes dtach, which holds the slot's terminal.
# usage: slot-holder.sh DTACH SOCKET LAUNCHER ENV_FILE EXIT_FILE
dtach=$1
socket=$2
shift 2
live() { [ -S "$1" ] && "$dtach" -p "$1" </dev/null >/dev/null 2>&1; }
# On an isolated host the agent moves the socket from s/ into its own folder (the one above) before it connects.
claimed=
case $socket in */s/*) claimed="${socket%/s/*}/${socket##*/}" ;; esac

# A live session here is one whose PM2 daemon died (kill -9, OOM): its programs still run. Adopt it rather than
# replace it, so nobody loses their shell: this process stands in for the session's dtach under the new daemon. It
# ends when the session does (PM2 then starts a fresh one, below) and ends the session when PM2 stops it.
if live "$socket" || { [ -n "$claimed" ] && live "$claimed"; }; then
  # Only a dtach of this account: any other can start a process whose command line names this socket.
  master=$(pgrep -o -u "$(id -u)" -f -- "-N $socket " 2>/dev/null)
  echo "slotdeck: adopting the session already running on $socket${master:+ (dtach $master)}" >&2
  trap '[ -n "$master" ] && kill -TERM "$master" 2>/dev/null; exit 0' INT TERM HUP
  while live "$socket" || { [ -n "$claimed" ] && live "$claimed"; }; do
    sleep 1 &
    wait $!
  done
  exit 0
fi
# A holder killed with SIGKILL leaves its socket behind, and dtach will not bind over it: remove a dead one.
rm -f "$socket"
SLOTDECK_SOCKET=$socket exec "$dtach" -N "$socket" -r none /bin/sh "$@"
