#!/usr/bin/env bash
# `pip install ./client/python` into a fresh virtual environment (with the
# system site packages: Debian's grpcio, protobuf, numpy, anndata, tqdm), then
# the package's example script runs a job against a daemon on an ephemeral
# loopback port and gets an AnnData back; then python_client_test.py (errors,
# checksums, CSR uploads, arrays) with the installed package.
# Usage: python_package_test.sh DAEMON PYTHON CANDIES_CLI REPO_ROOT
set -euo pipefail
daemon=$1
py=$2
cli=$3
root=$4
# shellcheck source-path=SCRIPTDIR source=lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"
make_test_dir
"$py" -m venv --system-site-packages "$dir/venv"
# Offline: the build backend (setuptools) and the dependencies come from the
# system packages (--no-deps: Debian's h5py ships no metadata pip recognises).
"$dir/venv/bin/pip" install --quiet --no-index --no-build-isolation --no-deps "$root/client/python"
cd "$dir"  # import the installed package, not the source folder
"$dir/venv/bin/python" -c "import candies_client, sys; assert 'site-packages' in candies_client.__file__, candies_client.__file__"
"$cli" simulate --out "$dir/sim" --grid 12 --seed 1 >/dev/null
start_daemon --insecure-dev-mode --metrics-listen ""
timeout 120 "$dir/venv/bin/python" "$root/client/python/examples/run_demo.py" "$dir/sim" "$addr" \
  --n-clusters 3 >"$dir/demo.out" 2>"$dir/demo.err" || { cat "$dir/demo.out" "$dir/demo.err" "$dir/err.log"; exit 1; }
grep -q "^job .* -> [0-9]* spots" "$dir/demo.out" || { cat "$dir/demo.out"; exit 1; }
timeout 100 "$dir/venv/bin/python" "$root/tests/server/python_client_test.py" "$addr"
