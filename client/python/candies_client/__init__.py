"""Python client for candiesd, the CANDIES spatial multi-omics service.

    from candies_client import Client
    with Client("127.0.0.1:50051", token=open("token").read().strip()) as c:
        result = c.run(rna_adata, prot_adata, n_clusters=5, labels_key="domain")
    result.obs["candies_cluster"], result.obsm["X_candies"]
"""
from .client import Client
from .errors import CandiesError, JobFailed

__all__ = ["Client", "CandiesError", "JobFailed"]
__version__ = "0.2.0"
