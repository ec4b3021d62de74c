#!/usr/bin/env bash
# One command from a fresh Debian machine to the main job on the built-in demo
# data: installs dependencies, builds Release, runs, prints what it found.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
bin=$root/build/bin
"$bin/candies" --help
