#!/usr/bin/env bash
# Runs a command with a real Secret Service: gnome-keyring in a D-Bus session of its own, with a fresh keyring that
# lives and dies with the command. The tests use it so that Slotdeck's secrets go through a real keychain.
set -euo pipefail
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
export XDG_DATA_HOME="$keyring_home/data" XDG_RUNTIME_DIR="$keyring_home/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
# shellcheck disable=SC2016
exec dbus-run-session -- bash -c 'echo -n slotdeck-tests | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"' bash "$@"
