#!/usr/bin/env bash
# Configures and builds candies. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args]
# Environment: CANDIES_BUILD_TYPE (Release), CANDIES_SANITIZE (e.g. address,undefined),
# CANDIES_JOBS (nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
jobs=${CANDIES_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Paths under the checkout are hashed relative to it, so a fresh clone in another
# folder (CI, a git worktree) reuses the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$root")}
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE="${CANDIES_BUILD_TYPE:-Release}" \
  -DCANDIES_SANITIZE="${CANDIES_SANITIZE:-}" "$@" >/dev/null
cmake --build "$build" -j "$jobs"
