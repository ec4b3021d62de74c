"""Runs a CANDIES job on candiesd from Python and gets the result back as AnnData.

    build/bin/candies simulate --out /tmp/sim           # the built-in demo data
    build/bin/candiesd &                                 # 127.0.0.1:50051
    pip install ./client/python
    python3 client/python/examples/run_demo.py /tmp/sim 127.0.0.1:50051 [--token FILE] [--report R.html]

Uploads the two modalities (progress bars), runs the whole method with the
true domains as labels, prints what came back, and with --report saves the
job's HTML report.
"""
import argparse

import anndata

from candies_client import CandiesError, Client

p = argparse.ArgumentParser()
p.add_argument("sim", nargs="?", default="/tmp/sim")
p.add_argument("address", nargs="?", default="127.0.0.1:50051")
p.add_argument("--token", help="file holding a bearer token")
p.add_argument("--owner", default="demo", help="owner name for a daemon in dev mode")
p.add_argument("--n-clusters", type=int, default=5)
p.add_argument("--report", help="write the job report (HTML) here")
args = p.parse_args()

rna = anndata.read_h5ad(f"{args.sim}/rna.h5ad")
prot = anndata.read_h5ad(f"{args.sim}/protein.h5ad")
token = open(args.token).read().strip() if args.token else None

with Client(args.address, token=token, owner=args.owner, timeout=600) as c:
    result = c.run(rna, prot, n_clusters=args.n_clusters, labels_key="domain", preset="fast",
                   seed=0)
    job = result.uns["candies_job"]
    print("job", job, "->", result.shape[0], "spots; obs:", list(result.obs.columns),
          "obsm:", sorted(result.obsm.keys()))
    if "candies" in result.uns:
        print("low-quality modality:", result.uns["candies"]["low_quality"])
        for name, value in result.uns["candies"].get("metrics", {}).items():
            print(f"{name}: {float(value):.4f}")
    if args.report:
        try:
            c.fetch_report(job, args.report)
            print("wrote", args.report)
        except CandiesError as e:
            print("no report:", e.code().name, e.details())
