#!/usr/bin/env bash
# scripts/setup.sh --cuda: fetches LibTorch 2.11.0 built for CUDA 13.0 (the PyPI
# wheel torch==2.11.0, which is 2.11.0+cu130) and the CUDA libraries it loads,
# every file pinned by sha256, and unpacks them into a cache folder that
# scripts/build.sh --cuda builds against. Idempotent: a finished folder is kept.
#
# Environment:
#   CANDIES_CACHE      cache root (default ~/.cache/candies); the result is
#                      $CANDIES_CACHE/libtorch-2.11.0-cu130 (site-packages layout:
#                      torch/, nvidia/), the wheels stay in $CANDIES_CACHE/wheels.
#   CANDIES_CUDA_HOME  a CUDA 13 toolkit (default /usr/local/cuda). When it has no
#                      bin/nvcc of release 13, nvcc, the CUDA headers and every CUDA
#                      library LibTorch loads come from PyPI's NVIDIA wheels too.
#   CANDIES_PIP        the pip to download with (default: python3 -m pip).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CANDIES_CACHE:-$HOME/.cache/candies}
dest=$cache/libtorch-2.11.0-cu130
wheels=$cache/wheels
cuda_home=${CANDIES_CUDA_HOME:-/usr/local/cuda}
read -r -a pip <<<"${CANDIES_PIP:-python3 -m pip}"

# LibTorch itself: the CPython 3.12 wheel (any CPython tag holds the same C++
# library) and the three CUDA libraries it needs that a CUDA toolkit lacks, at
# the versions its Requires-Dist pins (via cuda-toolkit[cufile]==13.0.2 for cufile).
TORCH_WHEELS='
torch==2.11.0 --hash=sha256:0f68f4ac6d95d12e896c3b7a912b5871619542ec54d3649cf48cc1edd4dd2756
'
TORCH_EXTRA_WHEELS='
nvidia-cufile==1.15.1.6 --hash=sha256:08a3ecefae5a01c7f5117351c64f17c7c62efa5fffdbe24fc7d298da19cd0b44
nvidia-cusparselt-cu13==0.8.0 --hash=sha256:25e30a8a7323935d4ad0340b95a0b69926eee755767e8e0b1cf8dd85b197d3fd
nvidia-nvshmem-cu13==3.4.5 --hash=sha256:290f0a2ee94c9f3687a02502f3b9299a9f9fe826e6d0287ee18482e78d495b80
'
# Without a CUDA 13 toolkit: nvcc (with its crt headers and the NVVM backend),
# the runtime and every other library libtorch_cuda.so loads, at the versions
# cuda-toolkit==13.0.2 (pinned by the torch wheel) names, plus cuDNN and NCCL.
TOOLKIT_WHEELS='
nvidia-cuda-nvcc==13.0.88 --hash=sha256:56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-cuda-crt==13.0.88 --hash=sha256:2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-nvvm==13.0.88 --hash=sha256:c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
nvidia-cuda-cccl==13.0.85 --hash=sha256:e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cublas==13.1.0.3 --hash=sha256:ee8722c1f0145ab246bccb9e452153b5e0515fd094c3678df50b2a0888b8b171
nvidia-cufft==12.0.0.61 --hash=sha256:6c44f692dce8fd5ffd3e3df134b6cdb9c2f72d99cf40b62c32dde45eea9ddad3
nvidia-curand==10.4.0.35 --hash=sha256:1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc
nvidia-cusparse==12.6.3.3 --hash=sha256:2b3c89c88d01ee0e477cb7f82ef60a11a4bcd57b6b87c33f789350b59759360b
nvidia-cusolver==12.0.4.66 --hash=sha256:0a759da5dea5c0ea10fd307de75cdeb59e7ea4fcb8add0924859b944babf1112
nvidia-cuda-cupti==13.0.85 --hash=sha256:4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8
nvidia-cuda-nvrtc==13.0.88 --hash=sha256:ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575
nvidia-nvjitlink==13.0.88 --hash=sha256:13a74f429e23b921c1109976abefacc69835f2f433ebd323d3946e11d804e47b
nvidia-nvtx==13.0.85 --hash=sha256:4936d1d6780fbe68db454f5e72a42ff64d1fd6397df9f363ae786930fd5c1cd4
nvidia-cudnn-cu13==9.19.0.56 --hash=sha256:d20e1734305e9d68889a96e3f35094d733ff1f83932ebe462753973e53a572bf
nvidia-nccl-cu13==2.28.9 --hash=sha256:e4553a30f34195f3fa1da02a6da3d6337d28f2003943aa0a3d247bbc25fefc42
'

if [[ $(uname -sm) != "Linux x86_64" ]]; then
  echo "setup --cuda: the pinned wheels are for Linux x86_64, not $(uname -sm)" >&2
  exit 1
fi

# A usable toolkit: nvcc of CUDA release 13 (the wheel's CUDA major version).
toolkit=""
if [[ -x $cuda_home/bin/nvcc ]] && "$cuda_home/bin/nvcc" --version | grep -q "release 13\."; then
  toolkit=$(cd "$cuda_home" && pwd -P)
fi
want="torch-2.11.0-cu130 toolkit=${toolkit:-wheels}"
if [[ -f $dest/.candies-setup && $(cat "$dest/.candies-setup") == "$want" ]]; then
  echo "setup --cuda: $dest is ready ($want)"
  exit 0
fi

mkdir -p "$wheels"
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
download() {  # download <requirements text> [pip platform flags...]
  printf '%s\n' "$1" >"$reqs"
  shift
  "${pip[@]}" download --quiet --no-deps --only-binary=:all: --require-hashes "$@" \
    -r "$reqs" -d "$wheels"
}
t0=$(date +%s)
echo "setup --cuda: downloading LibTorch 2.11.0+cu130 into $wheels"
download "$TORCH_WHEELS" --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64
download "$TORCH_EXTRA_WHEELS"
# File name patterns, globbed in $wheels.
files=('torch-2.11.0-cp312-cp312-manylinux_2_28_x86_64.whl' 'nvidia_cufile-1.15.1.6-*.whl'
       'nvidia_cusparselt_cu13-0.8.0-*.whl' 'nvidia_nvshmem_cu13-3.4.5-*.whl')
if [[ -z $toolkit ]]; then
  echo "setup --cuda: no CUDA 13 toolkit at $cuda_home; downloading nvcc and the CUDA libraries"
  download "$TOOLKIT_WHEELS"
  for w in $TOOLKIT_WHEELS; do  # "name==version" -> "name_with_underscores-version-*.whl"
    [[ $w == *==* ]] && files+=("$(echo "${w%%==*}" | tr - _)-${w##*==}-*.whl")
  done
fi
t1=$(date +%s)

echo "setup --cuda: unpacking into $dest"
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
(cd "$wheels" && python3 "$root/scripts/unpack_wheels.py" "$dest.tmp" "${files[@]}")
if [[ -n $toolkit ]]; then ln -s "$toolkit" "$dest.tmp/cuda"; else ln -s nvidia/cu13 "$dest.tmp/cuda"; fi
echo "$want" >"$dest.tmp/.candies-setup"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
t2=$(date +%s)
echo "setup --cuda: done: $(du -sh "$dest" | cut -f1) unpacked from $(cd "$wheels" && du -ch ${files[@]} | tail -1 | cut -f1) of wheels (download $((t1 - t0)) s, unpack $((t2 - t1)) s)"
