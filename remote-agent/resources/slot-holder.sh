#!/bin/sh
# Slotdeck slot holder: PM2 runs this for each slot (on an isolated host, through slotdeck-helper as the slot's own
# account); it becomes dtach, which holds the slot's terminal.
# usage: slot-holder.sh DTACH SOCKET LAUNCHER ENV_FILE EXIT_FILE
dtach=$1
socket=$2
shift 2
# A holder killed with SIGKILL leaves its socket behind, and dtach will not bind over it: remove a dead one. A live
# one means a session PM2 no longer supervises still runs there; starting a second would hide it, so refuse.
if [ -S "$socket" ]; then
  if "$dtach" -p "$socket" </dev/null >/dev/null 2>&1; then
    echo "slotdeck: a session is still running on $socket; not starting a second one" >&2
    exit 1
  fi
  rm -f "$socket"
fi
SLOTDECK_SOCKET=$socket exec "$dtach" -N "$socket" -r none /bin/sh "$@"
