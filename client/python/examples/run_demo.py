"""Runs the CANDIES demo job on a candiesd server from Python.

    build/bin/candies simulate --out /tmp/sim          # the built-in demo data
    build/bin/candiesd &                                # 127.0.0.1:50051
    PYTHONPATH=build/python:client/python python3 client/python/examples/run_demo.py /tmp/sim

Uploads two AnnData objects (sparse X stays sparse), runs the whole method with the
true domains as labels, prints the ARI the server computed, fetches the joint
embedding as a numpy array and lists the model the job kept.
"""
import sys

import anndata

from candies_client import Client

sim = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sim"
address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:50051"
rna = anndata.read_h5ad(f"{sim}/rna.h5ad")
prot = anndata.read_h5ad(f"{sim}/protein.h5ad")

c = Client(address, owner="demo", timeout=600)
result = c.run(rna, prot, n_clusters=5, labels_key="domain", preset="fast", seed=0,
               save_model=True)
print("low-quality modality:", result.uns["candies"]["low_quality"])
print("ARI:", float(result.uns["candies"]["metrics"]["ARI"]))
print(result.obs["candies_cluster"].value_counts().sort_index().to_dict())
emb, spots = c.fetch_array(result.uns["candies_job"], "X_candies")
print("joint embedding", emb.shape, "for", len(spots), "spots")
for m in c.list_models():
    print("model", m.id, "resident" if m.resident else "on disk", m.bytes, "bytes")
