"""A small Python client for candiesd (proto/candies/v1/candies.proto).

The generated modules (candies/v1/candies_pb2*.py) must be importable: the
build writes them to build/python (add it to sys.path or PYTHONPATH).

    c = Client("gpu1.lab:50051", token=os.environ["CANDIES_TOKEN"], tls_ca="ca.crt")
    rna = c.upload(X, obs_names, var_names, spatial, name="rna", kind="rna")
    job = c.submit(rna, prot, n_clusters=5)
    for event in c.watch(job): print(event.state, event.stage)
    c.fetch(job, "result.h5ad")

With AnnData objects (sparse X stays sparse on the wire; obs columns such as
the true domains travel along):

    result = c.run(rna_adata, prot_adata, n_clusters=5, labels_key="domain")
    result.obs["candies_cluster"], result.obsm["X_candies"]
    emb, names = c.fetch_array(job, "X_candies")

Credentials (docs/SECURITY.md): `token` (default: $CANDIES_TOKEN) is sent as
`authorization: Bearer`; `tls_ca` (PEM path) turns TLS on and verifies the
server; `tls_cert`/`tls_key` (PEM paths) add a client certificate (mTLS).
`owner` is only honoured by a daemon in insecure-dev-mode.
"""
import os

import grpc
import numpy as np

from candies.v1 import candies_pb2 as pb
from candies.v1 import candies_pb2_grpc as pb_grpc

_KINDS = {"rna": pb.MODALITY_KIND_RNA, "protein": pb.MODALITY_KIND_PROTEIN,
          "atac": pb.MODALITY_KIND_ATAC}
_BLOCK_BYTES = 2 << 20  # upload row blocks stay under gRPC's 4 MiB default


def fnv1a64(data: bytes, state: int = 14695981039346656037) -> int:
    """FNV-1a 64 as the server computes it over the float32 bytes of X."""
    for b in data:
        state = ((state ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return state


class Client:
    def __init__(self, address="127.0.0.1:50051", owner=None, timeout=60.0, token=None,
                 tls_ca=None, tls_cert=None, tls_key=None):
        if tls_ca or tls_cert or tls_key:
            if bool(tls_cert) != bool(tls_key):
                raise ValueError("tls_cert and tls_key: give both or neither")

            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(tls_ca) if tls_ca else None,
                private_key=read(tls_key) if tls_key else None,
                certificate_chain=read(tls_cert) if tls_cert else None)
            self._channel = grpc.secure_channel(address, creds)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.CandiesStub(self._channel)
        token = token if token is not None else os.environ.get("CANDIES_TOKEN")
        self._md = [("x-candies-owner", owner)] if owner else []
        if token:
            self._md.append(("authorization", "Bearer " + token))
        self._timeout = timeout

    def close(self):
        self._channel.close()

    def upload(self, X, obs_names, var_names, spatial, name="", kind="rna", checksum=True):
        """Uploads dense X (n_obs x n_vars); returns the dataset id."""
        X = np.ascontiguousarray(X, dtype="<f4")
        spatial = np.asarray(spatial, dtype=np.float32)[:, :2]
        n_obs, n_vars = X.shape
        header = pb.DatasetHeader(name=name, kind=_KINDS[kind], n_obs=n_obs, n_vars=n_vars,
                                  obs_names=list(map(str, obs_names)),
                                  var_names=list(map(str, var_names)),
                                  spatial=spatial.reshape(-1).tolist())
        rows = max(1, _BLOCK_BYTES // (4 * n_vars))
        # The pure-Python FNV is slow: only for small uploads unless asked.
        digest = fnv1a64(X.tobytes()) if checksum else 0

        def chunks():
            yield pb.UploadChunk(header=header)
            for i in range(0, n_obs, rows):
                last = i + rows >= n_obs
                yield pb.UploadChunk(rows=pb.RowBlock(values=X[i:i + rows].reshape(-1).tolist()),
                                     checksum_fnv1a64=digest if last else 0)

        return self._stub.UploadDataset(chunks(), metadata=self._md, timeout=self._timeout).id

    def upload_anndata(self, adata, name="", kind="rna", checksum=None):
        """Uploads an AnnData (X dense or scipy sparse, obsm["spatial"], obs
        text/categorical/integer columns); returns the dataset id. Sparse X is
        sent as CSR blocks. `checksum` defaults to on below 4 MB of values."""
        import scipy.sparse as sp
        if "spatial" not in adata.obsm:
            raise ValueError('obsm["spatial"] is required')
        columns = []
        for col in adata.obs.columns:
            s = adata.obs[col]
            if s.dtype.kind in "fc":
                continue  # not labels
            columns.append(pb.ObsColumn(name=str(col), values=[("" if v is None else str(v)) for v in s]))
        n_obs, n_vars = adata.shape
        header = pb.DatasetHeader(
            name=name, kind=_KINDS[kind], n_obs=n_obs, n_vars=n_vars,
            obs_names=list(map(str, adata.obs_names)), var_names=list(map(str, adata.var_names)),
            spatial=np.asarray(adata.obsm["spatial"], dtype=np.float32)[:, :2].reshape(-1).tolist(),
            obs_columns=columns)
        if not sp.issparse(adata.X):
            return self.upload(np.asarray(adata.X), adata.obs_names, adata.var_names,
                               adata.obsm["spatial"], name=name, kind=kind,
                               checksum=checksum if checksum is not None else adata.X.size < 1 << 20)
        X = sp.csr_matrix(adata.X, dtype=np.float32)
        X.sort_indices()
        if checksum is None:
            checksum = X.nnz < 1 << 19
        blocks = []
        i = 0
        state = 14695981039346656037
        while i < n_obs:
            end = i + 1
            while end < n_obs and (X.indptr[end + 1] - X.indptr[i]) * 8 < _BLOCK_BYTES:
                end += 1
            lo, hi = X.indptr[i], X.indptr[end]
            values = np.ascontiguousarray(X.data[lo:hi], dtype="<f4")
            indices = np.ascontiguousarray(X.indices[lo:hi], dtype="<i4")
            if checksum:
                state = fnv1a64(values.tobytes(), state)
                state = fnv1a64(indices.tobytes(), state)
            blocks.append(pb.CsrBlock(indptr=(X.indptr[i:end + 1] - lo).tolist(),
                                      indices=indices.tolist(), values=values.tolist()))
            i = end

        def chunks():
            yield pb.UploadChunk(header=header)
            for k, b in enumerate(blocks):
                last = k == len(blocks) - 1
                yield pb.UploadChunk(csr=b, checksum_fnv1a64=state if (checksum and last) else 0)

        return self._stub.UploadDataset(chunks(), metadata=self._md, timeout=self._timeout).id

    def run(self, mod1, mod2, n_clusters, mod1_kind="rna", mod2_kind="protein", timeout=None, **kw):
        """Uploads two AnnData objects, runs the job (SubmitJobRequest fields in
        `kw`, e.g. labels_key, preset, seed, save_model) and returns the result
        as an AnnData, as `candies run` writes it. Raises RuntimeError when the
        job does not succeed."""
        import tempfile
        import anndata
        a = self.upload_anndata(mod1, name="mod1", kind=mod1_kind)
        b = self.upload_anndata(mod2, name="mod2", kind=mod2_kind)
        job = self.submit(a, b, n_clusters, **kw)
        last = None
        for last in self.watch(job, timeout=timeout):
            pass
        if last is None or last.state != pb.JOB_STATE_SUCCEEDED:
            raise RuntimeError(f"job {job} ended {pb.JobState.Name(last.state) if last else '?'}: "
                               f"{last.error if last else ''}")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "result.h5ad")
            self.fetch(job, path)
            result = anndata.read_h5ad(path)
        result.uns.setdefault("candies_job", job)
        return result

    def fetch_array(self, job, part):
        """One array of a finished job: "X_candies", "X_candies_mod1",
        "X_candies_mod2", "X_candies_denoised", "spatial", "denoised_matrix"
        (float32 n x d) or "candies_cluster" (int32 n). Returns (array, obs_names)."""
        out, names, cols = None, [], 0
        for c in self._stub.FetchResult(pb.FetchResultRequest(id=job, part=part),
                                        metadata=self._md, timeout=self._timeout):
            if out is None:
                names = list(c.obs_names)
                cols = c.n_cols
                out = (np.empty(c.n_rows, np.int32) if part == "candies_cluster"
                       else np.empty((c.n_rows, c.n_cols), np.float32))
            if part == "candies_cluster":
                out[c.row_offset:c.row_offset + len(c.labels)] = c.labels
            else:
                block = np.asarray(c.values, np.float32).reshape(-1, cols)
                out[c.row_offset:c.row_offset + len(block)] = block
        return out, names

    def list_models(self):
        return self._stub.ListModels(pb.ListModelsRequest(), metadata=self._md,
                                     timeout=self._timeout).models

    def pin_model(self, model_id, pin=True):
        return self._stub.PinModel(pb.PinModelRequest(id=model_id, pin=pin), metadata=self._md,
                                   timeout=self._timeout)

    def unload_model(self, model_id):
        return self._stub.UnloadModel(pb.UnloadModelRequest(id=model_id), metadata=self._md,
                                      timeout=self._timeout)

    def publish_model(self, model_id, shared=True):
        """Shares a model read-only with every user (owner or admin only)."""
        return self._stub.PublishModel(pb.PublishModelRequest(id=model_id, shared=shared),
                                       metadata=self._md, timeout=self._timeout)

    def delete_model(self, model_id):
        self._stub.DeleteModel(pb.DeleteModelRequest(id=model_id), metadata=self._md,
                               timeout=self._timeout)

    def submit(self, mod1, mod2, n_clusters, **kw):
        """Submits a job; keyword arguments are SubmitJobRequest fields. Returns the job id."""
        req = pb.SubmitJobRequest(mod1_dataset=mod1, mod2_dataset=mod2, n_clusters=n_clusters, **kw)
        return self._stub.SubmitJob(req, metadata=self._md, timeout=self._timeout).id

    def get(self, job):
        return self._stub.GetJob(pb.GetJobRequest(id=job), metadata=self._md, timeout=self._timeout)

    def list_jobs(self, state=pb.JOB_STATE_UNSPECIFIED):
        req = pb.ListJobsRequest(state=state)
        while True:
            resp = self._stub.ListJobs(req, metadata=self._md, timeout=self._timeout)
            yield from resp.jobs
            if not resp.next_page_token:
                return
            req.page_token = resp.next_page_token

    def watch(self, job, timeout=None):
        """Yields JobEvents until the job ends (the last one has the final state)."""
        yield from self._stub.WatchJob(pb.WatchJobRequest(id=job), metadata=self._md,
                                       timeout=timeout)

    def cancel(self, job):
        return self._stub.CancelJob(pb.CancelJobRequest(id=job), metadata=self._md,
                                    timeout=self._timeout)

    def fetch(self, job, path, part="h5ad"):
        """Writes the result .h5ad (part="denoised_h5ad": the denoised matrix)
        to `path` (via a temp name); returns its size."""
        tmp = path + ".part"
        size = 0
        with open(tmp, "wb") as f:
            for chunk in self._stub.FetchResult(pb.FetchResultRequest(id=job, part=part),
                                                metadata=self._md, timeout=self._timeout):
                f.write(chunk.data)
                size += len(chunk.data)
        os.replace(tmp, path)
        return size
