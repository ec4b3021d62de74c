#!/usr/bin/env python3
"""Upload throughput of the Python client (candies_client) on loopback, with the
CRC-32 checksum on (it always is). Prints MB/s of float32 payload.

    build/bin/candiesd --listen 127.0.0.1:50051 --data-dir /tmp/bench-data &
    python3 bench/service/upload_bench.py 127.0.0.1:50051 --mb 1024 [--token FILE]

The time is the whole UploadDataset call: serialising, CRC-32, gRPC, the
server assembling and checking the matrix and writing its .h5ad. Also prints
the client-only cost (CRC-32 and chunk encoding, no network) for reference.
"""
import argparse
import time
import zlib

import numpy as np

from candies_client import Client
from candies_client.client import BLOCK_BYTES
from candies_client import _wire

p = argparse.ArgumentParser()
p.add_argument("address")
p.add_argument("--mb", type=int, default=1024, help="dense matrix size in MB (float32)")
p.add_argument("--n-vars", type=int, default=2000)
p.add_argument("--token")
p.add_argument("--owner", default="bench")
p.add_argument("--repeats", type=int, default=1)
args = p.parse_args()

n_vars = args.n_vars
n_obs = args.mb * 1_000_000 // (4 * n_vars)
X = np.random.default_rng(0).random((n_obs, n_vars), dtype=np.float32)
mb = X.nbytes / 1e6
names = [f"s{i}" for i in range(n_obs)]
genes = [f"g{j}" for j in range(n_vars)]
spatial = np.zeros((n_obs, 2), np.float32)
spatial[:, 0] = np.arange(n_obs)

t = time.perf_counter()
crc = zlib.crc32(memoryview(X).cast("B"))
t_crc = time.perf_counter() - t
t = time.perf_counter()
rows = BLOCK_BYTES // (4 * n_vars)
for i in range(0, n_obs, rows):
    _wire.row_chunk(bytes(memoryview(X[i:i + rows]).cast("B")))
t_enc = time.perf_counter() - t
print(f"matrix {n_obs} x {n_vars} float32 = {mb:.0f} MB")
print(f"client only: crc32 {mb / t_crc:.0f} MB/s, chunk encoding {mb / t_enc:.0f} MB/s")

token = open(args.token).read().strip() if args.token else None
with Client(args.address, token=token, owner=args.owner, timeout=3600, progress=False) as c:
    for r in range(args.repeats):
        t = time.perf_counter()
        ds = c.upload_dense(X, names, genes, spatial, name=f"bench{r}")
        dt = time.perf_counter() - t
        print(f"upload {r + 1}: {dt:.2f} s, {mb / dt:.0f} MB/s (checksum on), dataset {ds}")
