#!/usr/bin/env bash
# The main job: set up (idempotently), then run the agent for "This computer" with a slot ready to attach to.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh start
exec node scripts/start-local-agent.mjs "$@"
