#!/usr/bin/env bash
# Builds the agent and the desktop app only when what they are built from changed since the last good build: a
# SHA-256 over the sources, the build configuration and the lockfiles, kept in out/.slotdeck-build. A second
# `npm start` with nothing changed starts at once; any changed source (or a missing output) builds again.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=out/.slotdeck-build
# What the two builds read. Paths that do not exist here are skipped (the hash names the ones that do).
inputs=(
  src remote-agent/src remote-agent/bin
  package.json package-lock.json remote-agent/package.json remote-agent/package-lock.json
  electron.vite.config.ts vite.portal.config.ts tsconfig.base.json tsconfig.json tsconfig.node.json tsconfig.web.json
  remote-agent/tsconfig.json remote-agent/tsconfig.build.json
)

# Node does the hashing: the same on Linux and macOS (whose shell tools differ), and about 50 ms for the whole tree.
source_hash=$(
  node --input-type=module - "${inputs[@]}" <<'EOF'
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
const hash = createHash('sha256');
const visit = (path) => {
  if (!existsSync(path)) return;
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) visit(join(path, name));
    return;
  }
  // The name too: a renamed or moved file is a change.
  hash.update(`${path}\0`).update(readFileSync(path)).update('\0');
};
for (const input of process.argv.slice(2)) visit(input);
process.stdout.write(hash.digest('hex'));
EOF
)

outputs_present() {
  [ -f out/main/browser.js ] && [ -f out/main/index.js ] && [ -f out/preload/index.cjs ] &&
    [ -f out/renderer/index.html ] && [ -f remote-agent/dist/cli.js ] && [ -f remote-agent/portal-dist/index.html ]
}

if outputs_present && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$source_hash" ]; then
  echo "[build] up to date (no source changed since the last build)"
  exit 0
fi

echo "[build] building the agent and the desktop app (sources changed since the last build)"
rm -f "$stamp"
npm run --silent build:agent >/dev/null
npm run --silent build:desktop >/dev/null
# Written last: a build stopped halfway (Ctrl-C) leaves no stamp, so the next start builds again. A build run by hand
# (npm run build, build:agent, build:desktop) removes the stamp first (package.json's prebuild:* scripts): out/ then
# holds what that build saw, which this hash cannot vouch for.
mkdir -p out
printf '%s\n' "$source_hash" >"$stamp"
