#!/usr/bin/env python3
"""Unpacks the CUDA set-up's wheels (scripts/setup_cuda.sh) into one folder.

usage: unpack_wheels.py DEST PATTERN...   (patterns globbed in the current folder)

Keeps the site-packages layout (torch/, nvidia/...), because libtorch_cuda.so
finds the NVIDIA libraries through its RPATH $ORIGIN/../../nvidia/<name>/lib.
Of torch/ only lib/, include/ and share/ (the C++ library and its CMake config)
are kept, without two things that would break the build: the protobuf 3.13
headers in torch/include/google/ (they shadow Debian's protobuf and break every
generated .pb.h) and libtorch_python.so (needs libpython). torch/bin/protoc is
not unpacked either. Unix modes are kept (nvcc and friends are executables).
Each versioned NVIDIA library (libcudart.so.13) gets the unversioned link
(libcudart.so) that CMake's find_library looks for.
"""
import glob
import os
import sys
import zipfile


def wanted(name):
    if ".dist-info/" in name or name.endswith("/"):
        return False
    if name.startswith("torch/"):
        if name.startswith("torch/include/google/") or name == "torch/lib/libtorch_python.so":
            return False
        return name.startswith(("torch/lib/", "torch/include/", "torch/share/"))
    return name.startswith("nvidia/")


def unpack(wheel, dest):
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if not wanted(info.filename):
                continue
            path = z.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)


def link_unversioned(dest):
    for lib_dir in glob.glob(os.path.join(dest, "nvidia", "*", "lib")):
        for path in glob.glob(os.path.join(lib_dir, "lib*.so.*")):
            base = os.path.basename(path)
            plain = os.path.join(lib_dir, base[: base.index(".so") + 3])
            if not os.path.lexists(plain):
                os.symlink(base, plain)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dest = sys.argv[1]
    for pattern in sys.argv[2:]:
        matches = sorted(glob.glob(pattern))
        if len(matches) != 1:
            sys.exit(f"unpack_wheels: {pattern}: expected one wheel, found {len(matches)}")
        print(f"  {matches[0]}", flush=True)
        unpack(matches[0], dest)
    link_unversioned(dest)


if __name__ == "__main__":
    main()
