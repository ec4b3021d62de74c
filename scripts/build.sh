#!/usr/bin/env bash
# Configures and builds candies.
# Usage: scripts/build.sh [--cuda] [BUILD_DIR] [extra cmake args]
#   default  Debian's LibTorch 1.13 (CPU) in build/
#   --cuda   LibTorch 2.11 with CUDA 13 from scripts/setup.sh --cuda, in build-cuda/
# Environment: CANDIES_BUILD_TYPE (Release), CANDIES_SANITIZE (e.g. address,undefined),
# CANDIES_JOBS (nproc), CANDIES_TARGETS (space-separated targets; default all),
# CANDIES_CACHE (where setup.sh --cuda put LibTorch; ~/.cache/candies).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cuda=0
if [[ ${1:-} == --cuda ]]; then
  cuda=1
  shift
fi
default_build=$root/build
((cuda)) && default_build=$root/build-cuda
build=${1:-$default_build}
shift || true
jobs=${CANDIES_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Paths under the checkout are hashed relative to it, so a fresh clone in another
# folder (CI, a git worktree) reuses the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$root")}

variant=()
if ((cuda)); then
  libtorch=${CANDIES_CACHE:-$HOME/.cache/candies}/libtorch-2.11.0-cu130
  if [[ ! -f $libtorch/.candies-setup ]]; then
    echo "build --cuda: no LibTorch at $libtorch; run scripts/setup.sh --cuda first" >&2
    exit 1
  fi
  cuda_root=$(readlink -f "$libtorch/cuda")
  # CMAKE_PREFIX_PATH, not Torch_DIR alone: otherwise Debian's Caffe2/c10 config
  # is still found. The wheel's own protobuf headers were left out at unpacking.
  # $ORIGIN/../lib in the build RPATH lets scripts/gpu-bundle.sh ship bin/ with its
  # libraries in lib/ unchanged. TORCH_CUDA_ARCH_LIST skips Torch's GPU probe
  # (candies has no CUDA kernels of its own; 9.0 = H100/H200).
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  # CUDA_TOOLKIT_ROOT_DIR is for Torch's use of the legacy FindCUDA.
  variant=(-DCMAKE_PREFIX_PATH="$libtorch/torch" -DCUDAToolkit_ROOT="$cuda_root"
           -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root" -DCMAKE_CUDA_COMPILER="$cuda_root/bin/nvcc"
           -DCMAKE_BUILD_RPATH='$ORIGIN/../lib')
fi
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE="${CANDIES_BUILD_TYPE:-Release}" \
  -DCANDIES_SANITIZE="${CANDIES_SANITIZE:-}" "${variant[@]}" "$@" >/dev/null
targets=()
for t in ${CANDIES_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$jobs" "${targets[@]}"
