#!/usr/bin/env bash
# The main job on the bundled model; `make demo` runs it after building.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
cd "$(dirname "$0")/.."
"$LOWBIT" --help
