#!/bin/sh
# shellcheck disable=SC2015 # `a && b || die ...`: die when either fails, on purpose
# The host's side of deploying the Slotdeck agent, before Node is there. The panel uploads this file beside the agent
# tarball over SFTP and runs `sh host.sh <command> ...` over SSH (with sudo where a command says root).
#
#   detect [ACCOUNT]                    one JSON line: HostFacts (remote-agent/src/contract/release.ts)
#   ensure-account NAME                 (root) the agent's own account, created when missing
#   install-packages dtach|nodejs|build-tools
#                                       (root) from the distribution (apt-get, dnf, yum, apk)
#   build-dtach SRC.tgz SHA256          compile the bundled dtach source into /usr/local/bin (root) or ROOT/bin
#   install-node BASEURL MAJOR ARCH     Node's official tarball, verified against SHASUMS256.txt, into ROOT/node
#   unpack TARBALL VERSION              the agent into ROOT/releases/VERSION with its dependencies, and ROOT/bin's
#                                       wrapper
#
# ROOT is ~/.slotdeck-agent (SLOTDECK_ROOT overrides). Results are one JSON line on stdout; messages on stderr are
# for the admin. Exit codes: 0 ok, 1 other failure, 2 usage, 3 checksum mismatch, 4 a missing prerequisite (the
# message says what to install).
set -u
umask 022

ROOT=${SLOTDECK_ROOT:-${HOME:-/nonexistent}/.slotdeck-agent}
NODE_MIN_MAJOR=20
NODE_MIN_MINOR=10

say() { printf '%s\n' "host.sh: $*" >&2; }
die() {
  code=$1
  shift
  say "$*"
  exit "$code"
}
usage() { die 2 "usage: sh host.sh detect|ensure-account|install-packages|build-dtach|install-node|unpack ... ($*)"; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

# A JSON string: backslashes and quotes escaped, control characters dropped.
json_str() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}
json_bool() { if "$@" >/dev/null 2>&1; then printf true; else printf false; fi; }

# Fails (exit 4) in this shell, not in a $(...) subshell, when nothing can compute a SHA-256.
need_sha256_tool() {
  have sha256sum || have shasum || have openssl || die 4 "no SHA-256 tool: install coreutils (sha256sum) or openssl"
}

sha256_of() {
  if have sha256sum; then
    sha256sum "$1" | cut -d' ' -f1
  elif have shasum; then
    shasum -a 256 "$1" | cut -d' ' -f1
  elif have openssl; then
    openssl dgst -sha256 "$1" | sed 's/.*= *//'
  else
    die 4 "no SHA-256 tool: install coreutils (sha256sum) or openssl"
  fi
}

# Only https (and with curl no redirect to anything else), except plain http to this machine (tests' stand-ins).
check_url() {
  case $1 in
    https://*) ;;
    http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
    *) die 2 "refusing $1: Node is downloaded over https only" ;;
  esac
}

# Downloads URL to FILE with curl or wget.
download() {
  check_url "$1"
  if have curl; then
    case $1 in
      https://*) curl -fsSL --proto =https --proto-redir =https --retry 3 -o "$2" "$1" ;;
      *) curl -fsSL --retry 3 -o "$2" "$1" ;;
    esac
  elif have wget; then
    wget -q -O "$2" "$1"
  else
    die 4 "neither curl nor wget is installed: install curl"
  fi
}

# A symlink replaced in one rename, so readers never see it missing.
relink() {
  ln -s "$1" "$2.new.$$" || return 1
  mv -T "$2.new.$$" "$2" 2>/dev/null || {
    rm -f "$2"
    mv "$2.new.$$" "$2"
  }
}

# "major minor" of `NODE --version`, or nothing when it does not run.
node_version() { "$1" --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p'; }
new_enough() {
  major=${1%%.*}
  rest=${1#*.}
  minor=${rest%%.*}
  [ "$major" -gt "$NODE_MIN_MAJOR" ] || { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -ge "$NODE_MIN_MINOR" ]; }
}

# The Node the agent runs on: ROOT/node/current first (installed by install-node), then the distribution's (on
# Amazon Linux 2023 nodejs20 installs node-20). The first new enough wins; else the first found, so detect can say
# which Node is too old. Sets NODE and NODE_VERSION (empty when none).
choose_node() {
  NODE=
  NODE_VERSION=
  # Only PATH and ROOT: a PATH without node means "no Node here" (sudo -u gives secure_path, which has /usr/bin).
  for candidate in "$ROOT/node/current/bin/node" node node-22 node-20; do
    case $candidate in
      /*) [ -x "$candidate" ] || continue ;;
      *)
        candidate=$(command -v "$candidate" 2>/dev/null) || continue
        [ -n "$candidate" ] || continue
        ;;
    esac
    found=$(node_version "$candidate")
    [ -n "$found" ] || continue
    if new_enough "$found"; then
      NODE=$candidate
      NODE_VERSION=$found
      return 0
    fi
    [ -n "$NODE" ] || {
      NODE=$candidate
      NODE_VERSION=$found
    }
  done
  [ -n "$NODE" ]
}

# npm beside the chosen node (node -> npm, node-20 -> npm-20), else on PATH.
choose_npm() {
  dir=$(dirname "$NODE")
  base=$(basename "$NODE")
  suffix=${base#node}
  for candidate in "$dir/npm$suffix" "$dir/npm"; do
    [ -x "$candidate" ] && {
      NPM=$candidate
      return 0
    }
  done
  NPM=$(command -v npm 2>/dev/null) || return 1
  [ -n "$NPM" ]
}

package_manager() {
  for pm in apt-get dnf yum apk; do
    if have "$pm"; then
      case $pm in apt-get) echo apt ;; *) echo "$pm" ;; esac
      return 0
    fi
  done
  return 1
}

os_field() { sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | head -n 1 | sed -e 's/^"//' -e 's/"$//'; }

node_arch() {
  case $(uname -m) in
    x86_64 | amd64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    armv7l) echo armv7l ;;
    ppc64le) echo ppc64le ;;
    s390x) echo s390x ;;
    *) uname -m ;;
  esac
}

# The agent already deployed: ours (ROOT), else the named account's (default slotdeck) as far as we can see it.
agent_json() {
  account=$1
  root=
  owner=
  if [ -d "$ROOT" ]; then
    root=$ROOT
    owner=$(id -un)
  else
    home=$(getent passwd "$account" 2>/dev/null | cut -d: -f6)
    if [ -n "$home" ] && [ -d "$home/.slotdeck-agent" ]; then
      root=$home/.slotdeck-agent
      owner=$account
    fi
  fi
  if [ -z "$root" ]; then
    printf null
    return
  fi
  current=null
  if [ -L "$root/current" ]; then
    current=$(json_str "$(basename "$(readlink "$root/current")")")
  fi
  printf '{"root":%s,"current":%s,"account":%s}' "$(json_str "$root")" "$current" "$(json_str "$owner")"
}

cmd_detect() {
  [ $# -le 1 ] || usage "detect [ACCOUNT]"
  if choose_node; then
    node_json=$(printf '{"path":%s,"version":%s}' "$(json_str "$NODE")" "$(json_str "$NODE_VERSION")")
    npm=$(json_bool choose_npm)
  else
    node_json=null
    npm=$(json_bool have npm)
  fi
  dtach=false
  if have dtach || [ -x "$ROOT/bin/dtach" ]; then dtach=true; fi
  build=false
  if { have cc || have gcc; } && have make && have python3; then build=true; fi
  if is_root; then sudo=true; else sudo=$(json_bool sudo -n true); fi
  pm=$(package_manager) && pm=$(json_str "$pm") || pm=null
  printf '{"os":{"id":%s,"versionId":%s,"prettyName":%s},"arch":%s,"user":%s,"home":%s,"node":%s,"npm":%s,"dtach":%s,"buildTools":%s,"systemd":%s,"sudo":%s,"packageManager":%s,"agent":%s}\n' \
    "$(json_str "$(os_field ID)")" "$(json_str "$(os_field VERSION_ID)")" "$(json_str "$(os_field PRETTY_NAME)")" \
    "$(json_str "$(node_arch)")" "$(json_str "$(id -un)")" "$(json_str "${HOME:-}")" "$node_json" "$npm" "$dtach" \
    "$build" "$(json_bool test -d /run/systemd/system)" "$sudo" "$pm" "$(agent_json "${1:-slotdeck}")"
}

valid_account() { printf '%s' "$1" | grep -Eq '^[a-z_][a-z0-9_-]{0,30}$'; }

cmd_ensure_account() {
  [ $# -eq 1 ] || usage "ensure-account NAME"
  valid_account "$1" || die 2 "\"$1\" is not a usable account name (lowercase letters, digits, _ and -)"
  is_root || die 4 "ensure-account must run as root: sudo sh host.sh ensure-account $1"
  created=false
  if ! id "$1" >/dev/null 2>&1; then
    # A system account nobody logs in as, its home where setup-host puts it (the agent runs through sudo -u).
    shell=/bin/false
    for candidate in /usr/sbin/nologin /sbin/nologin; do
      if [ -x "$candidate" ]; then
        shell=$candidate
        break
      fi
    done
    if have useradd; then
      useradd --system --user-group --create-home --home-dir "/var/lib/$1" --shell "$shell" --comment "Slotdeck agent" "$1" ||
        die 1 "useradd $1 failed"
    elif have adduser; then
      adduser -S -D -h "/var/lib/$1" -s "$shell" "$1" || die 1 "adduser $1 failed"
    else
      die 4 "neither useradd nor adduser is installed: install shadow-utils (or passwd)"
    fi
    created=true
    say "created the account $1"
  fi
  home=$(getent passwd "$1" | cut -d: -f6)
  [ -n "$home" ] && [ -d "$home" ] || die 1 "the account $1 has no home folder ($home): create it, owned by $1"
  printf '{"account":%s,"home":%s,"created":%s}\n' "$(json_str "$1")" "$(json_str "$home")" "$created"
}

# A fresh cloud machine may still be installing packages itself: wait for cloud-init (at most 10 minutes).
wait_for_cloud_init() {
  have cloud-init || return 0
  say "waiting for cloud-init to finish"
  if have timeout; then timeout 600 cloud-init status --wait >/dev/null 2>&1; else cloud-init status --wait >/dev/null 2>&1; fi
  return 0
}

# "major.minor" of the first version-looking word on stdin (an epoch like "1:" is dropped).
first_version() { sed -n 's/^[^0-9]*\([0-9]*:\)\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\).*/\2/p' | head -n 1; }

# Refuses (exit 4) when the distribution's Node would be older than NODE_MIN: the panel then installs the official
# tarball (install-node) instead of a Node the agent cannot run on.
check_node_candidate() {
  case $1:$2 in
    apt:*) candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *//p' | first_version) ;;
    dnf:amzn | yum:amzn) candidate=$("$1" -q info nodejs20 2>/dev/null | sed -n 's/^Version *: *//p' | sort -t. -k1,1n -k2,2n | tail -n 1 | first_version) ;;
    dnf:* | yum:*) candidate=$("$1" -q info nodejs 2>/dev/null | sed -n 's/^Version *: *//p' | sort -t. -k1,1n -k2,2n | tail -n 1 | first_version) ;;
    *) return 0 ;;
  esac
  [ -n "$candidate" ] || die 4 "$1 has no nodejs package here: install Node $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer from nodejs.org (install-node)"
  new_enough "$candidate.0" ||
    die 4 "$1 would install Node $candidate, older than $NODE_MIN_MAJOR.$NODE_MIN_MINOR that the agent needs: install Node from nodejs.org (install-node) instead"
}

cmd_install_packages() {
  [ $# -ge 1 ] || usage "install-packages dtach|nodejs|build-tools"
  is_root || die 4 "install-packages must run as root (sudo); or install $* yourself"
  pm=$(package_manager) || die 4 "no package manager found (apt-get, dnf, yum or apk): install $* by hand"
  os=$(os_field ID)
  packages=
  for what in "$@"; do
    case $what in
      dtach) packages="$packages dtach" ;;
      nodejs)
        case $pm:$os in
          dnf:amzn | yum:amzn) packages="$packages nodejs20 nodejs20-npm" ;;
          apt:*) packages="$packages nodejs npm" ;;
          *) packages="$packages nodejs npm" ;;
        esac
        ;;
      build-tools)
        # A C compiler and make: enough for dtach (and for native modules with python3).
        case $pm in
          apt) packages="$packages gcc make libc6-dev python3" ;;
          dnf | yum) packages="$packages gcc make glibc-devel python3" ;;
          apk) packages="$packages gcc make musl-dev python3" ;;
        esac
        ;;
      *) usage "install-packages: unknown package set \"$what\"" ;;
    esac
  done
  wait_for_cloud_init
  if [ "$pm" = apt ]; then
    # A fresh Ubuntu runs unattended-upgrades at boot: wait for the dpkg lock instead of failing.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >&2 ||
      die 1 "apt-get update failed (see above)"
  fi
  case " $* " in *" nodejs "*) check_node_candidate "$pm" "$os" ;; esac
  say "installing$packages with $pm"
  # shellcheck disable=SC2086 # the package list is split on purpose
  case $pm in
    apt)
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $packages >&2
      ;;
    dnf) dnf install -y -q $packages >&2 ;;
    yum) yum install -y -q $packages >&2 ;;
    apk) apk add --no-cache $packages >&2 ;;
  esac || die 4 "$pm could not install$packages (see above); install them by hand or let the deploy build dtach from source"
  printf '{"installed":%s}\n' "$(json_str "${packages# }")"
}

# Refuses (exit 3) unless FILE's sha256 is EXPECTED.
verify() {
  need_sha256_tool
  actual=$(sha256_of "$1")
  [ "$actual" = "$2" ] || die 3 "checksum mismatch for $(basename "$1"): expected $2, got $actual; nothing was installed"
}

cmd_build_dtach() {
  [ $# -eq 2 ] || usage "build-dtach SRC.tgz SHA256"
  [ -f "$1" ] || die 1 "$1 does not exist"
  verify "$1" "$2"
  cc=
  for candidate in cc gcc clang; do
    if have "$candidate"; then
      cc=$candidate
      break
    fi
  done
  [ -n "$cc" ] || die 4 "dtach is not packaged here and there is no C compiler to build it: install gcc and make (or dtach)"
  if is_root; then target=/usr/local/bin; else target=$ROOT/bin; fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/slotdeck-dtach.XXXXXX") || die 1 "cannot make a temp folder"
  trap 'rm -rf "$work"' EXIT
  tar -xzf "$1" -C "$work" || die 1 "cannot unpack $1"
  src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  (
    cd "$src" &&
      CC=$cc ./configure >&2 &&
      if have make; then make >&2; else "$cc" -O2 -I. -o dtach attach.c master.c main.c >&2; fi
  ) || die 1 "building dtach failed (see above)"
  mkdir -p "$target" || die 1 "cannot create $target"
  cp "$src/dtach" "$target/dtach.new.$$" && chmod 755 "$target/dtach.new.$$" && mv -f "$target/dtach.new.$$" "$target/dtach" ||
    die 1 "cannot install dtach into $target"
  "$target/dtach" --help 2>&1 | grep -q "^dtach" || die 1 "the dtach built in $target does not run"
  printf '{"dtach":%s}\n' "$(json_str "$target/dtach")"
}

cmd_install_node() {
  [ $# -eq 3 ] || usage "install-node BASEURL MAJOR ARCH"
  base=${1%/}
  major=$2
  arch=$3
  printf '%s' "$major" | grep -Eq '^[0-9]{1,3}$' || die 2 "MAJOR must be a number like 20"
  printf '%s' "$arch" | grep -Eq '^[a-z0-9]{1,16}$' || die 2 "ARCH must be Node's name for it, such as x64 or arm64"
  check_url "$base/"
  need_sha256_tool
  work=$(mktemp -d "${TMPDIR:-/tmp}/slotdeck-node.XXXXXX") || die 1 "cannot make a temp folder"
  trap 'rm -rf "$work"' EXIT
  download "$base/index.json" "$work/index.json" || die 1 "cannot download $base/index.json"
  version=$(grep -o "\"version\": *\"v$major\.[0-9]*\.[0-9]*\"" "$work/index.json" | sed 's/.*"v\([0-9.]*\)"/\1/' |
    sort -t. -k2,2n -k3,3n | tail -n 1)
  [ -n "$version" ] || die 1 "$base/index.json lists no Node $major release"
  name=node-v$version-linux-$arch.tar.gz
  say "downloading Node $version ($arch) from $base"
  download "$base/v$version/SHASUMS256.txt" "$work/SHASUMS256.txt" || die 1 "cannot download $base/v$version/SHASUMS256.txt"
  expected=$(awk -v name="$name" '$2 == name { print $1 }' "$work/SHASUMS256.txt")
  [ -n "$expected" ] || die 1 "SHASUMS256.txt has no line for $name (is $arch a Linux architecture Node builds for?)"
  download "$base/v$version/$name" "$work/$name" || die 1 "cannot download $base/v$version/$name"
  verify "$work/$name" "$expected"
  target=$ROOT/node/v$version
  mkdir -p "$ROOT/node" || die 1 "cannot create $ROOT/node"
  rm -rf "$target.partial"
  mkdir "$target.partial" && tar -xzf "$work/$name" -C "$target.partial" || die 1 "cannot unpack $name"
  inner=$(find "$target.partial" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -n "$inner" ] && [ -x "$inner/bin/node" ] || die 1 "$name has no bin/node"
  got=$(node_version "$inner/bin/node")
  [ -n "$got" ] || die 1 "the downloaded node does not run here ($arch on $(uname -m)?)"
  rm -rf "$target"
  mv "$inner" "$target" && rm -rf "$target.partial" || die 1 "cannot move Node into $target"
  relink "v$version" "$ROOT/node/current" || die 1 "cannot link $ROOT/node/current"
  # A wrapper written for an older node follows the new one.
  if [ -f "$ROOT/bin/slotdeck-agent" ]; then write_wrapper "$ROOT/node/current/bin/node"; fi
  printf '{"node":%s,"version":%s}\n' "$(json_str "$ROOT/node/current/bin/node")" "$(json_str "$got")"
}

# ROOT/bin/slotdeck-agent: the chosen node and the current release's CLI; ROOT/bin first on PATH (a dtach built
# there is found).
write_wrapper() {
  mkdir -p "$ROOT/bin" || die 1 "cannot create $ROOT/bin"
  quoted_root=$(printf '%s' "$ROOT" | sed "s/'/'\\\\''/g")
  quoted_node=$(printf '%s' "$1" | sed "s/'/'\\\\''/g")
  cat >"$ROOT/bin/slotdeck-agent.new.$$" <<EOF || die 1 "cannot write $ROOT/bin/slotdeck-agent"
#!/bin/sh
# Written by host.sh: the agent's CLI on the Node it was installed with.
SLOTDECK_ROOT='$quoted_root'
# /usr/local/bin last: sudo's secure_path (Amazon Linux) lacks it, and dtach may be built there.
PATH="\$SLOTDECK_ROOT/bin:\${PATH:-/usr/bin:/bin}:/usr/local/bin"
export SLOTDECK_ROOT PATH
# Slots' holder and launcher scripts by a path that survives pruning the release a slot was started under.
SLOTDECK_RESOURCES_DIR="\$SLOTDECK_ROOT/current/resources"
export SLOTDECK_RESOURCES_DIR
cli="\$SLOTDECK_ROOT/current/bin/slotdeck-agent.js"
# No current release yet (a first activation, or one that failed): the first activation runs the release it
# activates; anything else (status, uninstall) any release that is unpacked.
if [ ! -e "\$cli" ]; then
  for unpacked in "\$SLOTDECK_ROOT"/releases/*/bin/slotdeck-agent.js; do
    [ -e "\$unpacked" ] && cli=\$unpacked
  done
  if [ "\${1:-}" = release ] && [ "\${2:-}" = activate ]; then
    case \${3:-} in
      [0-9]*) case \$3 in *[!0-9A-Za-z.-]* | *..*) ;; *) cli="\$SLOTDECK_ROOT/releases/\$3/bin/slotdeck-agent.js" ;; esac ;;
    esac
  fi
  [ -e "\$cli" ] || {
    echo "slotdeck-agent: no release is unpacked in \$SLOTDECK_ROOT: unpack one with host.sh unpack" >&2
    exit 4
  }
fi
# Each release runs on the Node it was unpacked with (its native modules were built for it); else this one.
node='$quoted_node'
release_dir=\$(dirname "\$(dirname "\$cli")")
if [ -r "\$release_dir/.node" ]; then
  recorded=\$(cat "\$release_dir/.node")
  [ -x "\$recorded" ] && node=\$recorded
fi
exec "\$node" "\$cli" "\$@"
EOF
  chmod 755 "$ROOT/bin/slotdeck-agent.new.$$" && mv -f "$ROOT/bin/slotdeck-agent.new.$$" "$ROOT/bin/slotdeck-agent" ||
    die 1 "cannot install $ROOT/bin/slotdeck-agent"
}

valid_version() { printf '%s' "$1" | grep -Eq '^[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}(-[0-9A-Za-z.-]{1,40})?$'; }

# What node_modules depends on: the lockfile without the package's own version, Node's ABI and the platform.
dependencies_key() {
  "$NODE" -e '
    const lock = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    delete lock.version;
    if (lock.packages && lock.packages[""]) delete lock.packages[""].version;
    const key = [JSON.stringify(lock), process.versions.modules, process.platform, process.arch].join("\n");
    process.stdout.write(require("crypto").createHash("sha256").update(key).digest("hex"));
  ' "$1"
}

cmd_unpack() {
  [ $# -eq 2 ] || usage "unpack TARBALL VERSION"
  tarball=$1
  version=$2
  valid_version "$version" || die 2 "\"$version\" is not a version like 1.2.3"
  [ -f "$tarball" ] || die 1 "$tarball does not exist"
  choose_node || die 4 "Node.js is not installed: install Node $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer (or let the deploy install it)"
  new_enough "$NODE_VERSION" ||
    die 4 "Node $NODE_VERSION ($NODE) is too old: the agent needs $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer"
  release=$ROOT/releases/$version
  current=
  if [ -L "$ROOT/current" ]; then current=$(basename "$(readlink "$ROOT/current")"); fi
  if [ "$current" = "$version" ]; then
    die 1 "$version is the running release; it stays as it is (pack a new version to upgrade)"
  fi
  partial=$release.partial
  mkdir -p "$ROOT/releases" || die 1 "cannot create $ROOT/releases"
  rm -rf "$partial"
  trap 'rm -rf "$partial"' EXIT
  mkdir "$partial" && tar -xzf "$tarball" -C "$partial" || die 1 "cannot unpack $tarball"
  folder=$partial/slotdeck-agent
  [ -f "$folder/package.json" ] || die 1 "$tarball is not an agent tarball (no slotdeck-agent/package.json)"
  packed=$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' "$folder/package.json" | head -n 1)
  [ "$packed" = "$version" ] || die 1 "$tarball holds version $packed, not $version"

  key=$(dependencies_key "$folder/package-lock.json") || die 1 "cannot read $folder/package-lock.json"
  printf '%s\n' "$key" >"$folder/.dependencies-key"
  dependencies=installed
  if [ -n "$current" ] && [ -d "$ROOT/current/node_modules" ] &&
    [ "$(cat "$ROOT/current/.dependencies-key" 2>/dev/null)" = "$key" ]; then
    # Hard links: instant, and npm never writes into an installed file, so the releases cannot disturb each other.
    if cp -al "$ROOT/current/node_modules" "$folder/node_modules" 2>/dev/null ||
      { rm -rf "$folder/node_modules" && cp -R "$ROOT/current/node_modules" "$folder/node_modules"; }; then
      dependencies=reused
      say "reused the dependencies of $current (same lockfile and Node ABI)"
    fi
  fi
  if [ "$dependencies" = installed ]; then
    choose_npm || die 4 "npm is not installed beside $NODE: install npm"
    say "installing dependencies with $NPM (Node $NODE_VERSION)"
    # npm's own scripts (native modules) must find this node as `node`.
    shim=$partial/node-shim
    mkdir -p "$shim" && ln -s "$NODE" "$shim/node"
    (cd "$folder" && PATH="$shim:$(dirname "$NODE"):$PATH" "$NPM" ci --omit=dev --no-audit --no-fund --loglevel=error >&2) ||
      die 1 "npm ci failed (see above); if a native module had to compile, install build tools (gcc, make, python3)"
  fi
  runs=$("$NODE" "$folder/bin/slotdeck-agent.js" --version 2>&1) ||
    die 1 "the unpacked agent does not run: $runs"
  [ "$runs" = "$version" ] || die 1 "the unpacked agent says it is $runs, not $version"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$folder/.installed-at"
  # The node this release was installed for, resolved (ROOT/node/current moves when another Node is installed).
  resolved=$(readlink -f "$NODE" 2>/dev/null) && [ -n "$resolved" ] || resolved=$NODE
  printf '%s\n' "$resolved" >"$folder/.node"
  rm -rf "$release"
  mv "$folder" "$release" || die 1 "cannot move the release into $release"
  rm -rf "$partial"
  write_wrapper "$NODE"
  printf '{"version":%s,"path":%s,"dependencies":%s,"node":%s,"nodeVersion":%s}\n' "$(json_str "$version")" \
    "$(json_str "$release")" "$(json_str "$dependencies")" "$(json_str "$NODE")" "$(json_str "$NODE_VERSION")"
}

command=${1:-}
[ $# -gt 0 ] && shift
case $command in
  detect) cmd_detect "$@" ;;
  ensure-account) cmd_ensure_account "$@" ;;
  install-packages) cmd_install_packages "$@" ;;
  build-dtach) cmd_build_dtach "$@" ;;
  install-node) cmd_install_node "$@" ;;
  unpack) cmd_unpack "$@" ;;
  *) usage "unknown command \"$command\"" ;;
esac
