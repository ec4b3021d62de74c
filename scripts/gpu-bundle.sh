#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine into one tarball:
# the CUDA build's programs and test binaries (bin/), the shared libraries they
# load that are neither LibTorch, CUDA nor the C runtime (lib/: gRPC, protobuf,
# Abseil, HDF5, SQLite, igraph, prometheus-cpp, ...; found with ldd), the check
# script and the test data it reads. LibTorch and CUDA are left out: the GPU
# machine's Python environment has torch 2.11.0+cu130, whose torch/lib the
# check puts on LD_LIBRARY_PATH. The binaries find lib/ through their build
# RPATH $ORIGIN/../lib (scripts/build.sh --cuda).
#
# usage: scripts/gpu-bundle.sh [BUILD_DIR (build-cuda)] [OUT (BUILD_DIR/candies-gpu.tar.gz)]
# Fails when the tarball exceeds CANDIES_BUNDLE_LIMIT_MIB (60).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build-cuda}" && pwd)
out=${2:-$build/candies-gpu.tar.gz}
limit_mib=${CANDIES_BUNDLE_LIMIT_MIB:-60}
libtorch=${CANDIES_CACHE:-$HOME/.cache/candies}/libtorch-2.11.0-cu130

programs=(candies candiesd candies-validate candies-worker bench_speed bench_quality)
tests=(runtime_tests cluster_tests models_tests diffusion_tests pipeline_tests preprocess_tests
       sim_tests metrics_tests)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b=$stage/candies-gpu
mkdir -p "$b/bin" "$b/lib" "$b/scripts" "$b/tests/metrics"
for p in "${programs[@]}" "${tests[@]}"; do
  if [[ ! -x $build/bin/$p ]]; then
    echo "gpu-bundle: $build/bin/$p is missing (scripts/build.sh --cuda builds it)" >&2
    exit 1
  fi
  strip --strip-unneeded -o "$b/bin/$p" "$build/bin/$p"
done
if ! readelf -d "$b/bin/candies" | grep -q 'ORIGIN/../lib'; then
  echo "gpu-bundle: bin/candies lacks the RPATH \$ORIGIN/../lib (build it with scripts/build.sh --cuda)" >&2
  exit 1
fi
cp "$root/scripts/gpu-check.sh" "$b/scripts/"
cp "$root/tests/metrics/reference.txt" "$b/tests/metrics/"
"$b/bin/candies" --version >"$b/BUILD_INFO" 2>/dev/null || true
git -C "$root" rev-parse HEAD >>"$b/BUILD_INFO" 2>/dev/null || true

# Left out: LibTorch (and the libgomp it ships), every CUDA/NVIDIA library, and
# the C and C++ runtimes (glibc, libstdc++, libgcc_s): Debian 12's libstdc++ needs
# glibc 2.36, newer than the rest of the bundle; the versions needed are printed.
skip='^(libtorch|libc10|libcaffe2|libshm|libgomp|libcu|libnv|libnccl|libcudnn|libcufile|libcusparseLt|libc\.so|libm\.so|libmvec|libpthread|libdl\.so|librt\.so|libresolv|libutil\.so|ld-linux|libstdc\+\+|libgcc_s)'
export LD_LIBRARY_PATH=$libtorch/torch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
declare -A seen=()
for f in "$b"/bin/*; do
  while read -r name _ path _; do
    [[ $path == /* ]] || continue
    [[ $name =~ $skip ]] && continue
    [[ -n ${seen[$name]:-} ]] && continue
    seen[$name]=1
    cp -L "$path" "$b/lib/$name"
  done < <(ldd "$f")
done
missing=$(for f in "$b"/bin/*; do ldd "$f"; done | grep 'not found' | sort -u || true)
if [[ -n $missing ]]; then
  echo "gpu-bundle: unresolved libraries:" >&2
  echo "$missing" >&2
  exit 1
fi
strip --strip-unneeded "$b"/lib/*.so* 2>/dev/null || true

# The C and C++ runtimes the GPU machine must have at least (not bundled).
glibc=$(objdump -T "$b"/bin/* "$b"/lib/* 2>/dev/null | grep -o 'GLIBC_2\.[0-9.]*' | sort -uV | tail -1)
glibcxx=$(objdump -T "$b"/bin/* "$b"/lib/* 2>/dev/null | grep -o 'GLIBCXX_3\.[0-9.]*' | sort -uV | tail -1)
echo "needs ${glibc:-GLIBC_?} and ${glibcxx:-GLIBCXX_?} or newer (not bundled)" >>"$b/BUILD_INFO"

tar -C "$stage" -czf "$out" candies-gpu
bytes=$(stat -c %s "$out")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "gpu-bundle: $out: $mib MiB ($(ls "$b/bin" | wc -l) binaries, $(ls "$b/lib" | wc -l) libraries, $(du -sh "$b" | cut -f1) unpacked; $(tail -1 "$b/BUILD_INFO"))"
if ((bytes > limit_mib * 1048576)); then
  echo "gpu-bundle: over the ${limit_mib} MiB limit" >&2
  exit 1
fi
