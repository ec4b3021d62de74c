"""candies_client.Client: candiesd from Python, with AnnData in and out."""
import functools
import os
import tempfile
import zlib

import grpc
import numpy as np

from ._proto import candies_pb2 as pb
from ._proto import candies_pb2_grpc as pb_grpc
from . import _wire
from .errors import CandiesError, JobFailed

KINDS = {"rna": pb.MODALITY_KIND_RNA, "protein": pb.MODALITY_KIND_PROTEIN,
         "atac": pb.MODALITY_KIND_ATAC}
# Job settings as text, as `candies run` takes them (any case; gmm = mclust,
# k-means = kmeans): field -> (enum prefix, aliases). The CLI and the daemon
# share one vocabulary (core/util/job_options.h); this mirrors it for Python.
_SETTINGS = {
    "kind": ("JOB_KIND_", ("full", "integrate", "denoise", "cluster"), {}),
    "preset": ("PRESET_", ("fast", "paper"), {}),
    "low_quality": ("LOW_QUALITY_", ("auto", "mod1", "mod2"), {}),
    "cluster_method": ("CLUSTER_METHOD_", ("mclust", "leiden", "kmeans"),
                       {"gmm": "mclust", "k-means": "kmeans"}),
}


def _settings_to_enums(kw):
    """Replaces text settings in `kw` ("fast", "GMM", ...) by their enum values."""
    for field, (prefix, names, aliases) in _SETTINGS.items():
        value = kw.get(field)
        if not isinstance(value, str):
            continue
        word = value.lower()
        word = aliases.get(word, word)
        if word == "":
            kw.pop(field)
        elif word in names:
            kw[field] = getattr(pb, prefix + word.upper())
        else:
            raise ValueError(f"{field}: '{value}' is not one of {', '.join(names)} (any case)")
    return kw


# Payload bytes per upload chunk, under candiesd's 64 MiB receive limit
# (kMaxMessageBytes, server/daemon.cc): fewer messages, less of gRPC's
# per-message work; docs/SERVICE.md, "Upload throughput".
BLOCK_BYTES = 8 << 20
_UPLOAD_METHOD = "/candies.v1.Candies/UploadDataset"


def _rpc(fn):
    """Turns grpc.RpcError into CandiesError (status code + field)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as e:
            raise CandiesError.from_rpc_error(e) from None
    return wrapper


def _stream(it):
    try:
        yield from it
    except grpc.RpcError as e:
        raise CandiesError.from_rpc_error(e) from None


def _bar(progress, **kw):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(**kw)


class Client:
    """A connection to candiesd.

    address: "host:port". token: sent as `authorization: Bearer <token>`
    (default: $CANDIES_TOKEN; docs/SECURITY.md). TLS: `tls_ca` (a PEM file)
    verifies the server, `tls_cert` / `tls_key` (PEM files) add a client
    certificate (mutual TLS); `tls=True` alone uses the system roots. owner:
    the x-candies-owner name a daemon in insecure-dev-mode takes. progress:
    tqdm bars for uploads and running jobs.
    """

    def __init__(self, address="127.0.0.1:50051", token=None, tls_ca=None, tls_cert=None,
                 tls_key=None, tls=False, owner=None, timeout=60.0, progress=True):
        options = [("grpc.max_receive_message_length", 64 << 20)]
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key: give both or neither")
        if tls or tls_ca or tls_cert:
            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(tls_ca) if tls_ca else None,
                private_key=read(tls_key) if tls_key else None,
                certificate_chain=read(tls_cert) if tls_cert else None)
            self._channel = grpc.secure_channel(address, creds, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._stub = pb_grpc.CandiesStub(self._channel)
        self._upload_raw = self._channel.stream_unary(
            _UPLOAD_METHOD, request_serializer=None, response_deserializer=pb.Dataset.FromString)
        self._md = []
        token = token if token is not None else os.environ.get("CANDIES_TOKEN")
        if token:
            self._md.append(("authorization", f"Bearer {token}"))
        if owner:
            self._md.append(("x-candies-owner", owner))
        self._timeout = timeout
        self._progress = progress

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- uploads -----------------------------------------------------------

    def upload_anndata(self, adata, name="", kind="rna"):
        """Uploads an AnnData (X dense or scipy sparse, obsm["spatial"], obs
        text / categorical / integer columns); returns the dataset id. Sparse X
        travels as CSR blocks. A CRC-32 over the values (and CSR indices) is
        always sent and checked by the server."""
        import scipy.sparse as sp
        if "spatial" not in adata.obsm:
            raise CandiesError(grpc.StatusCode.INVALID_ARGUMENT,
                               'spatial: obsm["spatial"] is required', "spatial")
        columns = []
        for col in adata.obs.columns:
            s = adata.obs[col]
            if s.dtype.kind in "fc":
                continue  # measurements, not labels
            columns.append(pb.ObsColumn(name=str(col),
                                        values=["" if v is None else str(v) for v in s]))
        n_obs, n_vars = adata.shape
        header = pb.DatasetHeader(
            name=name, kind=KINDS[kind], n_obs=n_obs, n_vars=n_vars,
            obs_names=list(map(str, adata.obs_names)), var_names=list(map(str, adata.var_names)),
            spatial=np.asarray(adata.obsm["spatial"], dtype=np.float32)[:, :2].reshape(-1).tolist(),
            obs_columns=columns, checksum=pb.CHECKSUM_KIND_CRC32)
        if sp.issparse(adata.X):
            X = sp.csr_matrix(adata.X, dtype=np.float32)
            X.sort_indices()
            blocks, total = self._csr_blocks(X), X.nnz * 8
        else:
            X = np.ascontiguousarray(adata.X, dtype="<f4")
            blocks, total = self._dense_blocks(X), X.nbytes
        return self._upload(header, blocks, total, f"upload {name or kind}")

    def upload_dense(self, X, obs_names, var_names, spatial, name="", kind="rna"):
        """Uploads a dense numpy X (n_obs x n_vars) without building an AnnData."""
        X = np.ascontiguousarray(X, dtype="<f4")
        n_obs, n_vars = X.shape
        header = pb.DatasetHeader(
            name=name, kind=KINDS[kind], n_obs=n_obs, n_vars=n_vars,
            obs_names=list(map(str, obs_names)), var_names=list(map(str, var_names)),
            spatial=np.asarray(spatial, dtype=np.float32)[:, :2].reshape(-1).tolist(),
            checksum=pb.CHECKSUM_KIND_CRC32)
        return self._upload(header, self._dense_blocks(X), X.nbytes, f"upload {name or kind}")

    @staticmethod
    def _dense_blocks(X):
        n_obs, n_vars = X.shape
        rows = max(1, BLOCK_BYTES // (4 * max(n_vars, 1)))
        for i in range(0, n_obs, rows):
            data = memoryview(X[i:i + rows]).cast("B")  # no copy: X is C-contiguous <f4
            yield (data,), lambda crc, last, data=data: _wire.row_chunk(
                data, crc if last else None), data.nbytes

    @staticmethod
    def _csr_blocks(X):
        n_obs = X.shape[0]
        i = 0
        while i < n_obs:
            # Whole rows up to BLOCK_BYTES of values + indices.
            end = int(np.searchsorted(X.indptr, X.indptr[i] + BLOCK_BYTES // 8, side="right")) - 1
            end = min(max(end, i + 1), n_obs)
            lo, hi = X.indptr[i], X.indptr[end]
            values = np.ascontiguousarray(X.data[lo:hi], dtype="<f4")
            indices = np.ascontiguousarray(X.indices[lo:hi], dtype="<i4")
            indptr = X.indptr[i:end + 1] - lo
            yield (values, indices), (lambda crc, last, p=indptr, ix=indices, v=values: _wire.csr_chunk(
                p, ix, v, crc if last else None)), values.nbytes + indices.nbytes
            i = end

    @_rpc
    def _upload(self, header, blocks, total, desc):
        bar = _bar(self._progress, total=total, unit="B", unit_scale=True, desc=desc)

        def chunks():
            yield header_chunk
            crc = 0
            pending = None
            # One block of look-ahead: the last chunk carries the checksum.
            for checked, make, nbytes in blocks:
                if pending is not None:
                    yield pending[0](crc, False)
                    if bar is not None:
                        bar.update(pending[1])
                for buf in checked:  # values, then (CSR) indices: the proto's order
                    crc = zlib.crc32(buf, crc)
                pending = (make, nbytes)
            if pending is not None:
                yield pending[0](crc, True)
                if bar is not None:
                    bar.update(pending[1])

        header_chunk = pb.UploadChunk(header=header).SerializeToString()
        try:
            return self._upload_raw(chunks(), metadata=self._md, timeout=self._timeout).id
        finally:
            if bar is not None:
                bar.close()

    # --- jobs ----------------------------------------------------------------

    @_rpc
    def submit(self, mod1, mod2, n_clusters, **kw):
        """Submits a job on two dataset ids; keyword arguments are
        SubmitJobRequest fields (labels_key, preset, seed, save_model, ...)."""
        req = pb.SubmitJobRequest(mod1_dataset=mod1, mod2_dataset=mod2, n_clusters=n_clusters,
                                  **_settings_to_enums(dict(kw)))
        return self._stub.SubmitJob(req, metadata=self._md, timeout=self._timeout).id

    @_rpc
    def get(self, job):
        return self._stub.GetJob(pb.GetJobRequest(id=job), metadata=self._md, timeout=self._timeout)

    def list_jobs(self, state=pb.JOB_STATE_UNSPECIFIED):
        req = pb.ListJobsRequest(state=state)
        while True:
            resp = _rpc(self._stub.ListJobs)(req, metadata=self._md, timeout=self._timeout)
            yield from resp.jobs
            if not resp.next_page_token:
                return
            req.page_token = resp.next_page_token

    def watch(self, job, timeout=None):
        """Yields JobEvents until the job ends (the last has the final state)."""
        yield from _stream(self._stub.WatchJob(pb.WatchJobRequest(id=job), metadata=self._md,
                                               timeout=timeout))

    def wait(self, job, timeout=None):
        """Follows a job to its end with a progress bar per stage; returns the
        last event; raises JobFailed unless the job succeeded."""
        bar, stage, last = None, None, None
        try:
            for ev in self.watch(job, timeout=timeout):
                last = ev
                if not self._progress:
                    continue
                if ev.stage and ev.stage != stage:
                    if bar is not None:
                        bar.close()
                    stage = ev.stage
                    bar = _bar(True, total=ev.total or None, desc=f"{job} {stage}", unit="step")
                if bar is not None and ev.step > 0:
                    bar.n = ev.step
                    if ev.loss == ev.loss and ev.loss != 0:
                        bar.set_postfix(loss=f"{ev.loss:.4g}", refresh=False)
                    bar.refresh()
        finally:
            if bar is not None:
                bar.close()
        if last is None or last.state != pb.JOB_STATE_SUCCEEDED:
            state = pb.JobState.Name(last.state) if last is not None else "UNKNOWN"
            raise JobFailed(job, state, last.error if last is not None else "no events")
        return last

    @_rpc
    def cancel(self, job):
        return self._stub.CancelJob(pb.CancelJobRequest(id=job), metadata=self._md,
                                    timeout=self._timeout)

    def run(self, mod1, mod2, n_clusters, mod1_kind="rna", mod2_kind="protein", timeout=None,
            **kw):
        """Uploads two AnnData objects, runs the job (SubmitJobRequest fields in
        `kw`) and returns the result AnnData as `candies run` writes it, with
        uns["candies_job"] = the job id. Raises JobFailed / CandiesError."""
        a = self.upload_anndata(mod1, name="mod1", kind=mod1_kind)
        b = self.upload_anndata(mod2, name="mod2", kind=mod2_kind)
        job = self.submit(a, b, n_clusters, **kw)
        self.wait(job, timeout=timeout)
        result = self.fetch_anndata(job)
        result.uns["candies_job"] = job
        return result

    # --- results -------------------------------------------------------------

    def fetch(self, job, path, part="h5ad"):
        """Writes a file part ("h5ad", "denoised_h5ad", "report") to `path`
        (through a temp name); returns its size in bytes."""
        tmp = path + ".part"
        size = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in _stream(self._stub.FetchResult(
                        pb.FetchResultRequest(id=job, part=part), metadata=self._md,
                        timeout=self._timeout)):
                    f.write(chunk.data)
                    size += len(chunk.data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return size

    def fetch_anndata(self, job, part="h5ad"):
        """The result (or part="denoised_h5ad": the denoised modality) as AnnData."""
        import anndata
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "part.h5ad")
            self.fetch(job, path, part=part)
            return anndata.read_h5ad(path)

    def fetch_report(self, job, path):
        """Writes the job's HTML report (pictures inline) to `path`."""
        return self.fetch(job, path, part="report")

    def fetch_array(self, job, part):
        """One array: "X_candies", "X_candies_mod1", "X_candies_mod2",
        "X_candies_denoised", "spatial", "denoised_matrix" (float32 n x d) or
        "candies_cluster" (int32 n). Returns (array, obs_names)."""
        out, names, cols = None, [], 0
        for c in _stream(self._stub.FetchResult(pb.FetchResultRequest(id=job, part=part),
                                                metadata=self._md, timeout=self._timeout)):
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

    # --- models --------------------------------------------------------------

    @_rpc
    def list_models(self):
        return self._stub.ListModels(pb.ListModelsRequest(), metadata=self._md,
                                     timeout=self._timeout).models

    @_rpc
    def pin_model(self, model_id, pin=True):
        return self._stub.PinModel(pb.PinModelRequest(id=model_id, pin=pin), metadata=self._md,
                                   timeout=self._timeout)

    @_rpc
    def unload_model(self, model_id):
        return self._stub.UnloadModel(pb.UnloadModelRequest(id=model_id), metadata=self._md,
                                      timeout=self._timeout)

    @_rpc
    def publish_model(self, model_id, shared=True):
        """Shares a model read-only with every user (owner or admin only)."""
        return self._stub.PublishModel(pb.PublishModelRequest(id=model_id, shared=shared),
                                       metadata=self._md, timeout=self._timeout)

    @_rpc
    def delete_model(self, model_id):
        self._stub.DeleteModel(pb.DeleteModelRequest(id=model_id), metadata=self._md,
                               timeout=self._timeout)
