#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the demo need.
# Idempotent and quick when everything is present. Run as root (or with sudo).
# --cuda: then also fetches LibTorch 2.11 with CUDA 13 from PyPI into a cache
# folder (scripts/setup_cuda.sh; scripts/build.sh --cuda builds against it).
set -euo pipefail
cuda=0
for arg in "$@"; do
  case $arg in
    --cuda) cuda=1 ;;
    *) echo "usage: scripts/setup.sh [--cuda]" >&2; exit 2 ;;
  esac
done
with_cuda() {
  if ((cuda)); then exec "$(dirname "$0")/setup_cuda.sh"; fi
  exit 0
}

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread     # LibTorch; OpenBLAS avoids the ~13x slower reference BLAS
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libhdf5-dev prometheus-cpp-dev libsqlite3-dev
  zlib1g-dev                            # CRC-32 of uploads (server, CLI)
  libgtest-dev libgmock-dev
  libigraph-dev libarpack2-dev libglpk-dev libgmp-dev libplfit-dev   # Leiden (igraph's CMake config needs all four)
  libnanoflann-dev                      # spatial kNN (KD-tree)
  clang libclang-rt-14-dev              # libFuzzer targets (bench/fuzz; CI runs a smoke of each)
  libssl-dev libcpp-httplib-dev openssl # token hashes, /metrics over HTTP(S), test certificates
  libcairo2-dev                         # the job's pictures (core/plot)
  chromium                              # renders the job report headless in tests/report
  prometheus                            # promtool checks deploy/prometheus/alerts.yml (~96 MB installed)
  slurm-wlm munge                       # executor = slurm: tests/server/slurm_e2e_test.sh starts a local cluster
  # Python side: interop tests against the real anndata, reference metrics
  # (scikit-learn), and the Python client (grpcio).
  python3 python3-anndata python3-h5py python3-numpy python3-scipy python3-pandas
  python3-sklearn python3-grpcio python3-protobuf
  python3-pil                           # reads the report's screenshot (tests/report/cli_report_test.sh)
  python3-venv python3-pip python3-setuptools python3-tqdm   # pip install ./client/python in a venv (tests)
  curl
  python3-pip                           # setup.sh --cuda: pip download of the pinned wheels
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  with_cuda
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
with_cuda
