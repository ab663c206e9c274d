#!/usr/bin/env bash
# Installs what Slotdeck needs on this machine, and builds it. Safe to run again: it only does what is missing.
#   scripts/setup.sh start   what `npm start` needs (the agent's tools, npm packages, a build)
#   scripts/setup.sh test    that, plus what the tests need (Chromium, tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() {
  printf '\033[1;31m[setup]\033[0m %s\n' "$*" >&2
  exit 1
}

# --- system packages -------------------------------------------------------------------------------------------
# command → Debian package. dtach holds each slot's terminal; g++/make/python3 build native modules when no
# prebuilt binary can be downloaded. The tests also need Chromium, tmux, a real sshd and ssh-keygen, and a Secret
# Service (gnome-keyring in its own D-Bus session), openssl (a certificate for the gateway's TLS test), and sudo (the
# isolation tests run the agent under its own account, which reaches the slot helper only through sudo).
declare -A packages=([dtach]=dtach [g++]=g++ [make]=make [python3]=python3)
if [ "$purpose" = test ]; then
  packages+=([chromium]=chromium [tmux]=tmux [sshd]=openssh-server [ssh-keygen]=openssh-client [gnome-keyring-daemon]=gnome-keyring [dbus-run-session]=dbus-daemon [openssl]=openssl [sudo]=sudo [promtool]=prometheus)
fi

missing=()
for command in "${!packages[@]}"; do
  command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("${packages[$command]}")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "Missing: ${missing[*]}. This is not a Debian-like system: install them with your package manager
(macOS: brew install dtach tmux, plus Chromium or Google Chrome; Fedora: dnf install dtach tmux chromium gcc-c++ make
python3 openssh-server gnome-keyring dbus-daemon), then run this again."
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "Missing: ${missing[*]}. Run as root, or install them: apt-get install ${missing[*]}"
    sudo="sudo"
  fi
  say "installing ${missing[*]} with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Node ------------------------------------------------------------------------------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || fail "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))."

# --- npm packages ----------------------------------------------------------------------------------------------
# npm ci runs again only when a lockfile changed since the last successful install.
install_if_stale() {
  local dir=$1
  local stamp="$dir/node_modules/.slotdeck-installed"
  local lock_hash
  lock_hash=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ]; then return; fi
  say "installing npm packages in ${dir}"
  # Electron's own download cannot succeed everywhere (it fetches from GitHub); without it the panel runs in
  # browser mode. On a connected machine, `npm run electron:download` fetches it later.
  (cd "$dir" && ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >"$stamp"
}
install_if_stale .
install_if_stale remote-agent

# --- build -----------------------------------------------------------------------------------------------------
# Only when a source, the build configuration or a lockfile changed since the last build (a second start is quick).
bash scripts/build-if-changed.sh
say "ready"
