#!/bin/sh
# Slotdeck's privileged helper: the one thing an agent may run as root (through one sudoers line), so that each slot
# runs as an unprivileged account of its own. `slotdeck-agent setup-host` installs a root-owned copy of this file
# with the holder and launcher scripts beside it; it never runs from the agent's own (agent-writable) tree.
#
#   slotdeck-helper check                       prints "ok <agent>": the agent's probe at start
#   slotdeck-helper ensure-account ACCOUNT      creates the account (once) and its folders
#   slotdeck-helper run ACCOUNT SLOT NPROC MB   becomes the slot's holder, as ACCOUNT, with process and memory
#                                               limits (MB 0: none beyond the agent's own watchdog)
#   slotdeck-helper stop ACCOUNT SLOT           ends the slot's holder (and so its program)
#   slotdeck-helper remove-slot ACCOUNT SLOT    removes the slot's home and work folders, as ACCOUNT
#   slotdeck-helper remove-account ACCOUNT      ends the account's processes and removes it with its files
#   slotdeck-helper poweroff                    shuts the machine down (the agent's idle auto-stop); on EC2 an
#                                               instance whose shutdown behaviour is "stop" stops
#
# ACCOUNT is sdu-<10 [a-z0-9]> (an end user's) or sds-<10 [a-z0-9]> (an owner-less slot's); SLOT is 10 [a-z0-9].
# Nothing else is accepted: no command, no path, no option. Settings come from the root-owned file
# /etc/slotdeck/agents/<agent>.conf, where <agent> is the account sudo says called us.
set -eu
# /usr/local/bin last: dtach built from source lands there (no package on Amazon Linux 2023).
PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin
export PATH
umask 022

die() {
  echo "slotdeck-helper: $*" >&2
  exit 2
}

agent=${SUDO_USER:-}
case "$agent" in '' | *[!a-z0-9_-]*) die "run it through sudo from the agent's account" ;; esac
conf=/etc/slotdeck/agents/$agent.conf
[ -f "$conf" ] && [ "$(stat -c %u "$conf")" = 0 ] || die "$conf is missing or not root's: run slotdeck-agent setup-host"
# Before the slot settings and dtach are checked: the idle stop must work even where those broke.
if [ "${1:-}" = poweroff ]; then
  [ $# -eq 1 ] || die "poweroff takes no arguments"
  exec shutdown -h now
fi
homes=$(sed -n 's/^homes=\(\/[A-Za-z0-9/._-]*\)$/\1/p' "$conf")
run=$(sed -n 's/^run=\(\/[A-Za-z0-9/._-]*\)$/\1/p' "$conf")
[ -n "$homes" ] && [ -n "$run" ] || die "$conf lacks homes= or run="
here=$(dirname "$(readlink -f "$0")")
dtach=$(command -v dtach) || die "dtach is not installed"
# Accounts this agent made carry this comment; no verb touches an account without it.
mark="slotdeck slot account of $agent"
scope=

account_ok() {
  case "$1" in sd[us]-[a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9]) ;; *) die "bad account name" ;; esac
}
slot_ok() {
  case "$1" in [a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9]) ;; *) die "bad slot id" ;; esac
}
number_ok() {
  case "$1" in '' | *[!0-9]* | ????????*) return 1 ;; esac
}
ours() {
  [ "$(getent passwd "$1" | cut -d: -f5)" = "$mark" ] || die "$1 is not an account of $agent"
}
as_account() {
  account=$1
  shift
  # shellcheck disable=SC2086 # $scope is empty or a fixed command built from validated numbers (see run)
  exec $scope setpriv --reuid="$account" --regid="$account" --init-groups --inh-caps=-all --no-new-privs \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$homes/$account" "$@"
}
folders() {
  # The agent owns the account's run folder (it writes the slot's environment and exit record there, and makes
  # s/ in it, where the account creates its dtach sockets); the account reads it through its group. Only folders
  # whose parent is root's are made or changed here: nothing the agent or an account can swap for a link.
  install -d -o root -g root -m 0711 "$run"
  install -d -o "$agent" -g "$1" -m 2750 "$run/$1"
}
# Ends every process of the account (a program may have left its terminal, or keep forking): as the account itself,
# until none is left.
kill_all() {
  tries=0
  while pgrep -u "$1" >/dev/null && [ "$tries" -lt 50 ]; do
    setpriv --reuid="$1" --regid="$1" --clear-groups kill -KILL -1 2>/dev/null || true
    sleep 0.05
    tries=$((tries + 1))
  done
}

[ $# -ge 1 ] || die "usage: check | ensure-account A | run A S N MB | stop A S | remove-slot A S | remove-account A | poweroff"
verb=$1
shift
case "$verb" in
check)
  [ $# -eq 0 ] || die "check takes no arguments"
  echo "ok $agent"
  ;;
ensure-account)
  [ $# -eq 1 ] || die "usage: ensure-account ACCOUNT"
  account_ok "$1"
  if getent passwd "$1" >/dev/null; then
    ours "$1"
  else
    groupadd --system "$1"
    useradd --system --gid "$1" --home-dir "$homes/$1" --no-create-home --shell /bin/bash --comment "$mark" "$1"
  fi
  install -d -o root -g root -m 0711 "$homes"
  install -d -o "$1" -g "$1" -m 0700 "$homes/$1"
  folders "$1"
  ;;
run)
  [ $# -eq 4 ] || die "usage: run ACCOUNT SLOT NPROC MB"
  account_ok "$1"
  slot_ok "$2"
  number_ok "$3" || die "bad process limit"
  number_ok "$4" || die "bad memory limit"
  ours "$1"
  folders "$1"
  # Where systemd runs the host, the slot gets a cgroup of its own: memory and tasks are enforced by the kernel
  # for the whole process tree. Elsewhere the agent's watchdog restarts a slot over its memory limit.
  if [ "$4" -gt 0 ] && [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
    scope="systemd-run --scope --quiet --collect --unit=slotdeck-$2-$$ -p MemoryMax=$4M -p TasksMax=$3 --"
  fi
  # Processes per account (fork bombs stay inside the slot's account); no core files with the program's memory.
  as_account "$1" prlimit --nproc="$3" --core=0 -- /bin/sh "$here/slot-holder.sh" "$dtach" "$run/$1/s/$2.sock" "$here/slot-launch.sh" \
    "$run/$1/$2.env" "$run/$1/$2.exit"
  ;;
stop)
  [ $# -eq 2 ] || die "usage: stop ACCOUNT SLOT"
  account_ok "$1"
  slot_ok "$2"
  ours "$1"
  case "$1" in
  # A slot's own account: stopping the slot ends everything that runs as it.
  sds-*) kill_all "$1" ;;
  # An end user's account may run their other slots too: end this slot's holder (and so its terminal's programs).
  *) pkill -TERM -u "$1" -f -- "-N $run/$1/s/$2.sock " || true ;;
  esac
  ;;
remove-slot)
  [ $# -eq 2 ] || die "usage: remove-slot ACCOUNT SLOT"
  account_ok "$1"
  slot_ok "$2"
  ours "$1"
  as_account "$1" rm -rf -- "$homes/$1/$2"
  ;;
remove-account)
  [ $# -eq 1 ] || die "usage: remove-account ACCOUNT"
  account_ok "$1"
  getent passwd "$1" >/dev/null || exit 0
  ours "$1"
  kill_all "$1"
  # Its uid will be given to a later account: nothing it owned may be left where that one could find it.
  find /tmp /var/tmp /dev/shm -xdev -user "$1" -delete 2>/dev/null || true
  rm -rf -- "${homes:?}/$1" "${run:?}/$1"
  userdel "$1"
  if getent group "$1" >/dev/null; then groupdel "$1"; fi
  ;;
*)
  die "unknown verb $verb"
  ;;
esac
