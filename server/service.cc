#include "server/service.h"

#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "core/util/status_macros.h"
#include "server/log.h"

namespace candies::server {
namespace fs = std::filesystem;

namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status Invalid(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string OwnerOf(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("x-candies-owner");
  if (it == md.end() || it->second.empty()) return "default";
  return std::string(it->second.data(), it->second.size());
}

bool IsFinal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
         s == v1::JOB_STATE_CANCELLED || s == v1::JOB_STATE_DEADLINE_EXCEEDED;
}

bool OneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return true;
  }
  return false;
}

v1::JobState ToProto(FinalState s) {
  switch (s) {
    case FinalState::kSucceeded: return v1::JOB_STATE_SUCCEEDED;
    case FinalState::kFailed: return v1::JOB_STATE_FAILED;
    case FinalState::kCancelled: return v1::JOB_STATE_CANCELLED;
    case FinalState::kDeadlineExceeded: return v1::JOB_STATE_DEADLINE_EXCEEDED;
  }
  return v1::JOB_STATE_FAILED;
}

}  // namespace

CandiesService::CandiesService(ServiceOptions options, Store* store, JobBackend* backend,
                               Metrics* metrics)
    : options_(std::move(options)), store_(store), backend_(backend), metrics_(metrics) {
  SchedulerListener l;
  l.on_start = [this](const std::string& id) { OnStart(id); };
  l.on_progress = [this](const std::string& id, const ProgressEvent& e) { OnProgress(id, e); };
  l.on_finish = [this](const std::string& id, FinalState s, const std::string& d, double t) {
    OnFinish(id, s, d, t);
  };
  models_ = std::make_unique<ModelRegistry>(
      options_.model_memory_budget, store_, backend_,
      [this](int n, int64_t bytes) { metrics_->SetModels(n, bytes); });
  if (absl::Status s = models_->LoadPinned(); !s.ok()) {
    LogLine("warn", "some pinned models did not load", absl::StrCat("error=\"", s.ToString(), "\""));
  }
  model_backend_ = std::make_unique<ModelBackend>(backend_, models_.get());
  scheduler_ = std::make_unique<Scheduler>(options_.scheduler, model_backend_.get(), std::move(l));
  // Oldest first, so that requeued jobs keep their submission order.
  std::vector<v1::Job> queued = store_->ListJobs(v1::JOB_STATE_QUEUED);
  for (auto it = queued.rbegin(); it != queued.rend(); ++it) {
    absl::Status s = Enqueue(*it);
    if (!s.ok()) {
      v1::Job job = *it;
      job.set_state(v1::JOB_STATE_FAILED);
      job.set_error(absl::StrCat("could not requeue after restart: ", s.ToString()));
      job.set_finished_unix(NowUnix());
      (void)store_->PutJob(job);
    }
  }
  UpdateGauges();
}

CandiesService::~CandiesService() { Shutdown(); }

void CandiesService::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    ++version_;
  }
  scheduler_->Shutdown();
}

grpc::Status CandiesService::Done(const char* method, absl::Time start,
                                  const absl::Status& status) {
  metrics_->Rpc(method, std::string(absl::StatusCodeToString(status.code())),
                absl::ToDoubleSeconds(absl::Now() - start));
  return ToGrpc(status);
}

void CandiesService::UpdateGauges() {
  metrics_->SetQueueDepth(scheduler_->queued());
  metrics_->SetRunning(scheduler_->running());
  metrics_->Refresh();
}

absl::Status CandiesService::Enqueue(const v1::Job& job) {
  const v1::SubmitJobRequest& r = job.spec();
  JobSpec spec;
  spec.id = job.id();
  spec.owner = job.owner();
  CANDIES_ASSIGN_OR_RETURN(spec.mod1_path, store_->GetDatasetFile(r.mod1_dataset()));
  CANDIES_ASSIGN_OR_RETURN(spec.mod2_path, store_->GetDatasetFile(r.mod2_dataset()));
  CANDIES_ASSIGN_OR_RETURN(v1::Dataset d1, store_->GetDataset(r.mod1_dataset()));
  CANDIES_ASSIGN_OR_RETURN(v1::Dataset d2, store_->GetDataset(r.mod2_dataset()));
  spec.mod1_kind = d1.kind();
  spec.mod2_kind = d2.kind();
  spec.kind = r.kind();
  spec.n_clusters = r.n_clusters();
  spec.low_quality = r.low_quality();
  spec.preset = r.preset();
  spec.seed = r.seed();
  spec.labels_key = r.labels_key();
  spec.device = options_.device;
  spec.cluster_method = r.cluster_method();  // empty: the preset's (resolved by the backend)
  spec.model_id = r.model_id();
  if (!job.model_id().empty()) spec.save_model_dir = store_->ModelDir(job.model_id());
  spec.result_path = store_->ResultPath(job.id());
  spec.denoised_path = store_->DenoisedPath(job.id());
  const absl::Time deadline = r.deadline_seconds() > 0
                                  ? absl::FromUnixSeconds(job.created_unix() + r.deadline_seconds())
                                  : absl::InfiniteFuture();
  return scheduler_->Submit(std::move(spec), r.priority(), deadline);
}

void CandiesService::OnStart(const std::string& id) {
  auto job = store_->GetJob(id);
  if (job.ok()) {
    job->set_state(v1::JOB_STATE_RUNNING);
    job->set_started_unix(NowUnix());
    (void)store_->PutJob(*job);
    LogLine("info", "job started", absl::StrCat("job=", id, " owner=", job->owner(),
                                                " attempt=", job->attempt()));
  }
  {
    absl::MutexLock lock(&mu_);
    Live& live = live_[id];
    live.event.set_state(v1::JOB_STATE_RUNNING);
    live.event.set_queue_position(-1);
    live.version = ++version_;
  }
  UpdateGauges();
}

absl::StatusOr<std::string> CandiesService::ModelBackend::Run(const JobSpec& spec,
                                                              const ProgressSink& progress,
                                                              const CancelToken* cancel) {
  if (spec.model_id.empty()) return inner_->Run(spec, progress, cancel);
  JobSpec with_model = spec;
  // The job holds its own reference: an eviction meanwhile does not pull the
  // model out from under it.
  CANDIES_ASSIGN_OR_RETURN(with_model.model, models_->Acquire(spec.model_id));
  return inner_->Run(with_model, progress, cancel);
}

void CandiesService::OnProgress(const std::string& id, const ProgressEvent& e) {
  absl::MutexLock lock(&mu_);
  Live& live = live_[id];
  const absl::Time now = absl::Now();
  if (e.stage != live.event.stage()) {
    if (!live.event.stage().empty()) {
      metrics_->StageFinished(live.event.stage(), absl::ToDoubleSeconds(now - live.stage_started));
    }
    live.stage_started = now;
  }
  live.event.set_state(v1::JOB_STATE_RUNNING);
  live.event.set_stage(e.stage);
  live.event.set_step(e.step);
  live.event.set_total(e.total_steps);
  live.event.set_loss(std::isfinite(e.loss) ? e.loss : 0.0);
  live.event.set_eta_seconds(e.eta_seconds);
  live.event.set_queue_position(-1);
  live.version = ++version_;
}

void CandiesService::OnFinish(const std::string& id, FinalState state, const std::string& detail,
                              double seconds) {
  auto job = store_->GetJob(id);
  std::string kind = "full";
  // A trained model is recorded before the job reads SUCCEEDED, so whoever
  // sees the final state finds the model.
  if (job.ok() && state == FinalState::kSucceeded && !job->model_id().empty()) {
    v1::Model m;
    m.set_id(job->model_id());
    m.set_name(job->spec().mod1_dataset() + "+" + job->spec().mod2_dataset());
    m.set_owner(job->owner());
    m.set_created_unix(NowUnix());
    m.set_source_job(id);
    auto added = models_->Add(m);
    if (!added.ok()) {
      LogLine("warn", "trained model not resident",
              absl::StrCat("job=", id, " model=", m.id(), " error=\"", added.status().ToString(), "\""));
    }
  }
  if (job.ok()) {
    job->set_state(ToProto(state));
    job->set_finished_unix(NowUnix());
    if (state != FinalState::kSucceeded) job->set_error(detail);
    kind = job->spec().kind();
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it != live_.end()) job->set_stage(it->second.event.stage());
  }
  LogLine(state == FinalState::kSucceeded ? "info" : "warn", "job finished",
          absl::StrCat("job=", id, " kind=", kind, " state=", FinalStateName(state),
                       " seconds=", seconds,
                       state == FinalState::kSucceeded ? "" : absl::StrCat(" error=\"", detail, "\"")));
  // Metrics before the row: whoever sees the final state also sees it counted.
  metrics_->JobFinished(kind, FinalStateName(state), seconds);
  if (job.ok()) (void)store_->PutJob(*job);
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it != live_.end() && !it->second.event.stage().empty() && state == FinalState::kSucceeded) {
      metrics_->StageFinished(it->second.event.stage(),
                              absl::ToDoubleSeconds(absl::Now() - it->second.stage_started));
    }
    live_.erase(id);  // watchers now read the final row from the store
    ++version_;
  }
  UpdateGauges();
}

void CandiesService::Decorate(v1::Job* job, const std::map<std::string, int>* positions) {
  int position = -1;
  if (job->state() == v1::JOB_STATE_QUEUED) {
    if (positions == nullptr) {
      position = scheduler_->QueuePosition(job->id());
    } else if (auto it = positions->find(job->id()); it != positions->end()) {
      position = it->second;
    }
  }
  job->set_queue_position(position);
  absl::MutexLock lock(&mu_);
  auto it = live_.find(job->id());
  if (it != live_.end() && !it->second.event.stage().empty()) {
    job->set_stage(it->second.event.stage());
  }
}

grpc::Status CandiesService::UploadDataset(grpc::ServerContext* ctx,
                                           grpc::ServerReader<v1::UploadChunk>* reader,
                                           v1::Dataset* out) {
  const absl::Time t0 = absl::Now();
  return Done("UploadDataset", t0, UploadImpl(ctx, reader, out));
}

absl::Status CandiesService::CheckOwnerQuotas(const std::string& owner, int64_t new_bytes) {
  int64_t stored = 0;
  for (const v1::Dataset& d : store_->ListDatasets()) {
    if (d.owner() == owner && d.source() == "upload") stored += d.size_bytes();
  }
  if (stored + new_bytes > options_.max_dataset_bytes_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "owner ", owner, ": ", stored, " stored + ", new_bytes,
        " new bytes exceed max-dataset-bytes-per-owner = ", options_.max_dataset_bytes_per_owner,
        " (delete datasets with DeleteDataset)"));
  }
  return absl::OkStatus();
}

absl::Status CandiesService::UploadImpl(grpc::ServerContext* ctx,
                                        grpc::ServerReader<v1::UploadChunk>* reader,
                                        v1::Dataset* out) {
  v1::UploadChunk chunk;
  if (!reader->Read(&chunk)) return Invalid("header", "the stream is empty");
  if (!chunk.has_header()) return Invalid("header", "the first chunk must carry the header");
  const v1::DatasetHeader h = chunk.header();
  if (h.n_obs() <= 0) return Invalid("header.n_obs", "must be > 0");
  if (h.n_vars() <= 0) return Invalid("header.n_vars", "must be > 0");
  if (h.n_vars() > INT32_MAX) return Invalid("header.n_vars", "must be < 2^31");
  // Dense size is the limit for both encodings: the pipeline densifies the
  // reduced features, and a limit that depends on sparsity surprises users.
  if (h.n_obs() > INT64_MAX / 4 / h.n_vars() ||
      h.n_obs() * h.n_vars() * 4 > options_.max_upload_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "header: ", h.n_obs(), " x ", h.n_vars(), " float32 exceeds max-upload-bytes = ",
        options_.max_upload_bytes));
  }
  const std::string owner = OwnerOf(ctx);
  CANDIES_RETURN_IF_ERROR(CheckOwnerQuotas(owner, 0));
  if (h.obs_names_size() != 0 && h.obs_names_size() != h.n_obs()) {
    return Invalid("header.obs_names",
                   absl::StrCat("has ", h.obs_names_size(), " names, want n_obs = ", h.n_obs()));
  }
  {
    // Spots are matched across modalities by name: names must be unique.
    std::set<std::string> seen;
    for (const auto& n : h.obs_names()) {
      if (!seen.insert(n).second) return Invalid("header.obs_names", absl::StrCat("duplicate '", n, "'"));
    }
  }
  if (h.var_names_size() != 0 && h.var_names_size() != h.n_vars()) {
    return Invalid("header.var_names",
                   absl::StrCat("has ", h.var_names_size(), " names, want n_vars = ", h.n_vars()));
  }
  if (h.spatial_size() != 2 * h.n_obs()) {
    return Invalid("header.spatial", absl::StrCat("has ", h.spatial_size(),
                                                  " values, want 2 * n_obs = ", 2 * h.n_obs()));
  }
  for (float v : h.spatial()) {
    if (!std::isfinite(v)) return Invalid("header.spatial", "has a NaN or infinite coordinate");
  }
  if (h.obs_columns_size() > options_.max_obs_columns) {
    return Invalid("header.obs_columns", absl::StrCat("has ", h.obs_columns_size(),
                                                      " columns, more than max-obs-columns = ",
                                                      options_.max_obs_columns));
  }
  std::set<std::string> column_names;
  for (int c = 0; c < h.obs_columns_size(); ++c) {
    const v1::ObsColumn& col = h.obs_columns(c);
    const std::string field = absl::StrCat("header.obs_columns[", c, "]");
    if (col.name().empty()) return Invalid(field + ".name", "is empty");
    if (!column_names.insert(col.name()).second) {
      return Invalid(field + ".name", absl::StrCat("duplicate '", col.name(), "'"));
    }
    if (col.values_size() != h.n_obs()) {
      return Invalid(field + ".values", absl::StrCat("has ", col.values_size(),
                                                     " values, want n_obs = ", h.n_obs()));
    }
  }

  // Body: dense row blocks or CSR blocks (one kind per upload).
  const int64_t n_obs = h.n_obs(), n_vars = h.n_vars();
  std::vector<float> dense;
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<float> values;
  int64_t rows_done = 0;
  int body = 0;  // 0 none yet, 1 dense, 2 csr
  uint64_t fnv = kFnv1a64Offset;
  uint64_t checksum = 0;
  int64_t wire_bytes = 0;
  while (reader->Read(&chunk)) {
    if (ctx->IsCancelled()) return absl::CancelledError("upload cancelled by the client");
    if (chunk.has_header()) return Invalid("header", "sent twice");
    if (chunk.checksum_fnv1a64() != 0) checksum = chunk.checksum_fnv1a64();
    if (chunk.has_rows()) {
      if (body == 2) return Invalid("rows", "dense rows after CSR blocks (use one kind per upload)");
      body = 1;
      const auto& v = chunk.rows().values();
      if (v.size() % n_vars != 0) {
        return Invalid("rows.values", absl::StrCat("block of ", v.size(),
                                                   " values is not whole rows of n_vars = ", n_vars));
      }
      if (rows_done + v.size() / n_vars > n_obs) {
        return Invalid("rows.values", absl::StrCat("more than n_obs = ", n_obs, " rows"));
      }
      if (dense.empty()) dense.reserve(static_cast<size_t>(n_obs * n_vars));
      fnv = Fnv1a64(v.data(), v.size() * sizeof(float), fnv);
      dense.insert(dense.end(), v.begin(), v.end());
      rows_done += v.size() / n_vars;
      wire_bytes += static_cast<int64_t>(v.size()) * 4;
    } else if (chunk.has_csr()) {
      if (body == 1) return Invalid("csr", "CSR blocks after dense rows (use one kind per upload)");
      body = 2;
      const v1::CsrBlock& b = chunk.csr();
      const int64_t rows = b.indptr_size() - 1;
      if (rows < 1) return Invalid("csr.indptr", "needs rows + 1 >= 2 entries");
      if (b.indptr(0) != 0) return Invalid("csr.indptr", "must start at 0");
      if (rows_done + rows > n_obs) {
        return Invalid("csr.indptr", absl::StrCat("more than n_obs = ", n_obs, " rows"));
      }
      if (b.indices_size() != b.values_size()) {
        return Invalid("csr.indices", absl::StrCat(b.indices_size(), " indices for ",
                                                   b.values_size(), " values"));
      }
      for (int64_t r = 0; r < rows; ++r) {
        if (b.indptr(r + 1) < b.indptr(r)) return Invalid("csr.indptr", "must not decrease");
      }
      if (b.indptr(rows) != b.values_size()) {
        return Invalid("csr.indptr", absl::StrCat("ends at ", b.indptr(rows), ", want nnz = ",
                                                  b.values_size()));
      }
      for (int32_t j : b.indices()) {
        if (j < 0 || j >= n_vars) {
          return Invalid("csr.indices", absl::StrCat("column ", j, " outside [0, ", n_vars, ")"));
        }
      }
      fnv = Fnv1a64(b.values().data(), b.values_size() * sizeof(float), fnv);
      fnv = Fnv1a64(b.indices().data(), b.indices_size() * sizeof(int32_t), fnv);
      const int64_t base = indptr.back();
      for (int64_t r = 1; r <= rows; ++r) indptr.push_back(base + b.indptr(r));
      indices.insert(indices.end(), b.indices().begin(), b.indices().end());
      values.insert(values.end(), b.values().begin(), b.values().end());
      rows_done += rows;
      wire_bytes += static_cast<int64_t>(b.values_size()) * 8 + (rows + 1) * 8;
    } else if (chunk.checksum_fnv1a64() == 0) {
      return Invalid("payload", "a chunk after the header must carry rows or csr");
    }
  }
  if (rows_done != n_obs) {
    return Invalid(body == 2 ? "csr" : "rows",
                   absl::StrCat("got ", rows_done, " rows, want n_obs = ", n_obs));
  }
  if (checksum != 0 && checksum != fnv) {
    return absl::DataLossError(absl::StrCat("checksum_fnv1a64: client sent ", checksum,
                                            ", server computed ", fnv));
  }
  for (float v : body == 1 ? dense : values) {
    if (!std::isfinite(v)) return Invalid(body == 1 ? "rows.values" : "csr.values", "has NaN or Inf");
  }
  AnnData a;
  a.X = body == 1 ? Matrix::Dense(n_obs, n_vars, std::move(dense))
                  : Matrix::Csr(n_obs, n_vars, std::move(indptr), std::move(indices), std::move(values));
  for (int64_t i = 0; i < n_obs; ++i) {
    a.obs.index.push_back(h.obs_names_size() ? h.obs_names(static_cast<int>(i)) : absl::StrCat(i));
  }
  for (int64_t j = 0; j < n_vars; ++j) {
    a.var.index.push_back(h.var_names_size() ? h.var_names(static_cast<int>(j)) : absl::StrCat(j));
  }
  for (const v1::ObsColumn& col : h.obs_columns()) {
    a.obs.Set(Column::Categorical(col.name(), {col.values().begin(), col.values().end()}));
  }
  a.obsm["spatial"] = Matrix::Dense(n_obs, 2, {h.spatial().begin(), h.spatial().end()});
  v1::Dataset d;
  d.set_id(NewId("ds"));
  d.set_name(h.name());
  d.set_kind(h.kind());
  d.set_n_obs(n_obs);
  d.set_n_vars(n_vars);
  d.set_owner(owner);
  d.set_created_unix(NowUnix());
  d.set_source("upload");
  CANDIES_RETURN_IF_ERROR(CheckOwnerQuotas(owner, wire_bytes));
  CANDIES_RETURN_IF_ERROR(store_->PutDataset(d, a));
  metrics_->BytesUploaded(static_cast<double>(wire_bytes));
  *out = d;
  return absl::OkStatus();
}

grpc::Status CandiesService::RegisterDataset(grpc::ServerContext* ctx,
                                             const v1::RegisterDatasetRequest* req,
                                             v1::Dataset* out) {
  const absl::Time t0 = absl::Now();
  auto run = [&]() -> absl::Status {
    if (req->path().empty()) return Invalid("path", "is empty");
    std::error_code ec;
    const fs::path real = fs::canonical(req->path(), ec);
    if (ec) return absl::NotFoundError(absl::StrCat("path: ", req->path(), ": ", ec.message()));
    bool allowed = false;
    for (const std::string& dir : options_.allowed_dirs) {
      const fs::path root = fs::canonical(dir, ec);
      if (ec) continue;
      const std::string prefix = root.string() + "/";
      if (real.string().compare(0, prefix.size(), prefix) == 0) allowed = true;
    }
    if (!allowed) {
      return absl::PermissionDeniedError(
          absl::StrCat("path: ", real.string(), " is not under an allowed dir (--allowed-dir)"));
    }
    ReadOptions ro;
    CANDIES_ASSIGN_OR_RETURN(AnnData a, ReadH5ad(real.string(), ro));
    v1::Dataset d;
    d.set_id(NewId("ds"));
    d.set_name(req->name().empty() ? real.filename().string() : req->name());
    d.set_kind(req->kind());
    d.set_n_obs(a.n_obs());
    d.set_n_vars(a.n_vars());
    d.set_owner(OwnerOf(ctx));
    d.set_created_unix(NowUnix());
    d.set_size_bytes(static_cast<int64_t>(fs::file_size(real, ec)));
    d.set_source(real.string());
    CANDIES_RETURN_IF_ERROR(store_->PutDatasetRow(d, real.string()));
    *out = d;
    return absl::OkStatus();
  };
  return Done("RegisterDataset", t0, run());
}

grpc::Status CandiesService::GetDataset(grpc::ServerContext*, const v1::GetDatasetRequest* req,
                                        v1::Dataset* out) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("GetDataset", t0, Invalid("id", "is empty"));
  auto d = store_->GetDataset(req->id());
  if (d.ok()) *out = *d;
  return Done("GetDataset", t0, d.status());
}

grpc::Status CandiesService::ListDatasets(grpc::ServerContext*, const v1::ListDatasetsRequest*,
                                          v1::ListDatasetsResponse* out) {
  const absl::Time t0 = absl::Now();
  for (auto& d : store_->ListDatasets()) *out->add_datasets() = std::move(d);
  return Done("ListDatasets", t0, absl::OkStatus());
}

grpc::Status CandiesService::DeleteDataset(grpc::ServerContext*,
                                           const v1::DeleteDatasetRequest* req,
                                           v1::DeleteDatasetResponse*) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("DeleteDataset", t0, Invalid("id", "is empty"));
  return Done("DeleteDataset", t0, store_->DeleteDataset(req->id()));
}

grpc::Status CandiesService::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                                       v1::Job* out) {
  const absl::Time t0 = absl::Now();
  auto run = [&]() -> absl::Status {
    v1::SubmitJobRequest r = *req;
    if (r.kind().empty()) r.set_kind("full");
    if (r.low_quality().empty()) r.set_low_quality("auto");
    if (r.preset().empty()) r.set_preset("fast");
    if (r.mod1_dataset().empty()) return Invalid("mod1_dataset", "is empty");
    if (r.mod2_dataset().empty()) return Invalid("mod2_dataset", "is empty");
    if (!OneOf(r.kind(), {"full", "integrate", "denoise", "cluster"})) {
      return Invalid("kind", absl::StrCat("'", r.kind(), "' is not full|integrate|denoise|cluster"));
    }
    if (r.n_clusters() <= 0) return Invalid("n_clusters", "must be > 0");
    if (!OneOf(r.low_quality(), {"auto", "mod1", "mod2"})) {
      return Invalid("low_quality", absl::StrCat("'", r.low_quality(), "' is not auto|mod1|mod2"));
    }
    if (!OneOf(r.preset(), {"fast", "paper"})) {
      return Invalid("preset", absl::StrCat("'", r.preset(), "' is not fast|paper"));
    }
    if (r.deadline_seconds() < 0) return Invalid("deadline_seconds", "must be >= 0");
    if (!r.cluster_method().empty() && !OneOf(r.cluster_method(), {"mclust", "leiden", "kmeans"})) {
      return Invalid("cluster_method", absl::StrCat("'", r.cluster_method(),
                                                    "' is not mclust|leiden|kmeans (or empty: the preset's)"));
    }
    const bool trains = r.kind() == "full" || r.kind() == "denoise";
    if (!r.model_id().empty()) {
      if (!trains) return Invalid("model_id", absl::StrCat("applies to kind full or denoise, not ", r.kind()));
      if (r.save_model()) return Invalid("save_model", "cannot be combined with model_id (an applied model is not retrained)");
      if (!models_->Get(r.model_id()).ok()) {
        return absl::NotFoundError(absl::StrCat("model_id: model ", r.model_id(), " not found"));
      }
    }
    if (r.save_model() && !trains) {
      return Invalid("save_model", absl::StrCat("applies to kind full or denoise, not ", r.kind()));
    }
    for (const auto& [field, id] : {std::pair<std::string, std::string>{"mod1_dataset", r.mod1_dataset()},
                                    {"mod2_dataset", r.mod2_dataset()}}) {
      if (!store_->GetDataset(id).ok()) {
        return absl::NotFoundError(absl::StrCat(field, ": dataset ", id, " not found"));
      }
    }
    const std::string owner = OwnerOf(ctx);
    int queued_by_owner = 0;
    for (const v1::Job& j : store_->ListJobs(v1::JOB_STATE_QUEUED)) queued_by_owner += j.owner() == owner;
    if (queued_by_owner >= options_.max_queued_per_owner) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "owner ", owner, " has ", queued_by_owner, " queued jobs (max-queued-per-owner = ",
          options_.max_queued_per_owner, ")"));
    }
    v1::Job job;
    job.set_id(NewId("job"));
    if (r.save_model()) job.set_model_id(NewId("model"));
    job.set_state(v1::JOB_STATE_QUEUED);
    *job.mutable_spec() = r;
    job.set_owner(owner);
    job.set_created_unix(NowUnix());
    job.set_attempt(1);
    // The row first, so that a worker starting at once finds it.
    CANDIES_RETURN_IF_ERROR(store_->PutJob(job));
    absl::Status s = Enqueue(job);
    if (!s.ok()) {
      job.set_state(v1::JOB_STATE_FAILED);
      job.set_error(absl::StrCat("not queued: ", s.ToString()));
      job.set_finished_unix(NowUnix());
      (void)store_->PutJob(job);
      return s;
    }
    UpdateGauges();
    Decorate(&job);
    *out = job;
    return absl::OkStatus();
  };
  return Done("SubmitJob", t0, run());
}

grpc::Status CandiesService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* req,
                                    v1::Job* out) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("GetJob", t0, Invalid("id", "is empty"));
  auto job = store_->GetJob(req->id());
  if (!job.ok()) return Done("GetJob", t0, job.status());
  *out = *job;
  Decorate(out);
  return Done("GetJob", t0, absl::OkStatus());
}

grpc::Status CandiesService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* req,
                                      v1::ListJobsResponse* out) {
  const absl::Time t0 = absl::Now();
  auto run = [&]() -> absl::Status {
    if (req->page_size() < 0 || req->page_size() > options_.max_page_size) {
      return Invalid("page_size", absl::StrCat("must be in [0, ", options_.max_page_size, "]"));
    }
    const int page = req->page_size() == 0 ? 100 : req->page_size();
    int64_t offset = 0;
    if (!req->page_token().empty() &&
        (!absl::SimpleAtoi(req->page_token(), &offset) || offset < 0)) {
      return Invalid("page_token", "is not a token from a previous ListJobs");
    }
    std::vector<v1::Job> jobs = store_->ListJobs(req->state());
    const std::map<std::string, int> positions = scheduler_->QueuePositions();
    for (int64_t i = offset; i < static_cast<int64_t>(jobs.size()) && i < offset + page; ++i) {
      v1::Job* j = out->add_jobs();
      *j = std::move(jobs[static_cast<size_t>(i)]);
      Decorate(j, &positions);
    }
    if (offset + page < static_cast<int64_t>(jobs.size())) {
      out->set_next_page_token(absl::StrCat(offset + page));
    }
    return absl::OkStatus();
  };
  return Done("ListJobs", t0, run());
}

grpc::Status CandiesService::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("WatchJob", t0, Invalid("id", "is empty"));
  uint64_t seen = UINT64_MAX;
  int last_position = INT_MIN;
  while (true) {
    auto job = store_->GetJob(req->id());
    if (!job.ok()) return Done("WatchJob", t0, job.status());
    v1::JobEvent e;
    bool changed = false;
    uint64_t now_version = 0;
    {
      absl::MutexLock lock(&mu_);
      now_version = version_;
      auto it = live_.find(req->id());
      if (it != live_.end() && !IsFinal(job->state())) e = it->second.event;
      if (shutting_down_) return Done("WatchJob", t0, absl::UnavailableError("server is shutting down"));
    }
    if (IsFinal(job->state())) {
      e.set_state(job->state());
      e.set_stage(job->stage());
      e.set_error(job->error());
      e.set_queue_position(-1);
      writer->Write(e);
      return Done("WatchJob", t0, absl::OkStatus());
    }
    if (e.state() == v1::JOB_STATE_UNSPECIFIED) e.set_state(job->state());
    const int position = e.state() == v1::JOB_STATE_QUEUED ? scheduler_->QueuePosition(req->id()) : -1;
    e.set_queue_position(position);
    if (now_version != seen || position != last_position) changed = true;
    if (changed) {
      if (!writer->Write(e)) return Done("WatchJob", t0, absl::CancelledError("client went away"));
      seen = now_version;
      last_position = position;
    }
    if (ctx->IsCancelled()) return Done("WatchJob", t0, absl::CancelledError("client went away"));
    // Wake on any change, or every 500 ms to notice a cancelled client.
    absl::MutexLock lock(&mu_);
    auto moved = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
    mu_.AwaitWithTimeout(absl::Condition(&moved), absl::Milliseconds(500));
  }
}

grpc::Status CandiesService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* req,
                                       v1::Job* out) {
  const absl::Time t0 = absl::Now();
  auto run = [&]() -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_ASSIGN_OR_RETURN(v1::Job job, store_->GetJob(req->id()));
    if (IsFinal(job.state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("id: job ", job.id(), " already ended (", v1::JobState_Name(job.state()), ")"));
    }
    CANDIES_RETURN_IF_ERROR(scheduler_->Cancel(job.id()));
    // A queued job is final now; a running one ends at its next check.
    CANDIES_ASSIGN_OR_RETURN(*out, store_->GetJob(req->id()));
    Decorate(out);
    return absl::OkStatus();
  };
  return Done("CancelJob", t0, run());
}

grpc::Status CandiesService::FetchResult(grpc::ServerContext* ctx,
                                         const v1::FetchResultRequest* req,
                                         grpc::ServerWriter<v1::ResultChunk>* writer) {
  const absl::Time t0 = absl::Now();
  auto run = [&]() -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_ASSIGN_OR_RETURN(v1::Job job, store_->GetJob(req->id()));
    if (job.state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "id: job ", job.id(), " has no result (state ", v1::JobState_Name(job.state()), ")"));
    }
    const std::string part = req->part().empty() ? "h5ad" : req->part();
    if (part != "h5ad" && part != "denoised_h5ad") return FetchArray(ctx, job, part, writer);
    const std::string path =
        part == "h5ad" ? store_->ResultPath(job.id()) : store_->DenoisedPath(job.id());
    if (part == "denoised_h5ad" && !fs::exists(path)) {
      return absl::NotFoundError(absl::StrCat("part: job ", job.id(), " made no denoised matrix (kind ",
                                              job.spec().kind(), ")"));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::DataLossError(absl::StrCat("result file of ", job.id(), " is missing"));
    std::error_code ec;
    const int64_t total = static_cast<int64_t>(fs::file_size(path, ec));
    std::string buf(static_cast<size_t>(options_.fetch_chunk_bytes), '\0');
    bool first = true;
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const std::streamsize got = in.gcount();
      if (got <= 0) break;
      v1::ResultChunk c;
      c.set_data(buf.data(), static_cast<size_t>(got));
      if (first) c.set_total_bytes(total);
      first = false;
      if (ctx->IsCancelled() || !writer->Write(c)) return absl::CancelledError("client went away");
      metrics_->BytesDownloaded(static_cast<double>(got));
    }
    return absl::OkStatus();
  };
  return Done("FetchResult", t0, run());
}

absl::Status CandiesService::FetchArray(grpc::ServerContext* ctx, const v1::Job& job,
                                        const std::string& part,
                                        grpc::ServerWriter<v1::ResultChunk>* writer) {
  static const std::set<std::string> kObsm = {"X_candies", "X_candies_mod1", "X_candies_mod2",
                                              "X_candies_denoised", "spatial"};
  if (kObsm.count(part) == 0 && part != "candies_cluster" && part != "denoised_matrix") {
    return Invalid("part", absl::StrCat("'", part, "' is not h5ad, denoised_h5ad, X_candies, "
                                        "X_candies_mod1, X_candies_mod2, X_candies_denoised, "
                                        "spatial, candies_cluster or denoised_matrix"));
  }
  const bool denoised = part == "denoised_matrix";
  const std::string path = denoised ? store_->DenoisedPath(job.id()) : store_->ResultPath(job.id());
  if (denoised && !fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat("part: job ", job.id(), " made no denoised matrix (kind ",
                                            job.spec().kind(), ")"));
  }
  CANDIES_ASSIGN_OR_RETURN(AnnData a, ReadH5ad(path));
  std::vector<int32_t> labels;
  Matrix m;
  if (part == "candies_cluster") {
    const Column* c = a.obs.Find("candies_cluster");
    if (c == nullptr || c->kind != Column::Kind::kCategorical) {
      return absl::DataLossError(absl::StrCat("result of ", job.id(), " has no obs[candies_cluster]"));
    }
    // Categories are the domain numbers as text ("0", "1", ...).
    for (int32_t code : c->codes) {
      int32_t v = -1;
      if (code >= 0 && !absl::SimpleAtoi(c->categories[static_cast<size_t>(code)], &v)) v = code;
      labels.push_back(v);
    }
    m.n_rows = static_cast<int64_t>(labels.size());
    m.n_cols = 1;
  } else if (denoised) {
    m = ToDense(a.X);
  } else {
    auto it = a.obsm.find(part);
    if (it == a.obsm.end()) {
      return absl::NotFoundError(absl::StrCat("part: the result of job ", job.id(), " has no obsm[\"",
                                              part, "\"] (kind ", job.spec().kind(), ")"));
    }
    m = ToDense(it->second);
  }
  const int64_t cols = std::max<int64_t>(1, m.n_cols);
  const int64_t rows_per_chunk = std::max<int64_t>(1, options_.fetch_chunk_bytes / 4 / cols);
  for (int64_t r = 0; r < m.n_rows || r == 0; r += rows_per_chunk) {
    const int64_t end = std::min(m.n_rows, r + rows_per_chunk);
    v1::ResultChunk c;
    c.set_n_rows(m.n_rows);
    c.set_n_cols(m.n_cols);
    c.set_row_offset(r);
    if (r == 0) {
      for (const auto& n : a.obs.index) c.add_obs_names(n);
      if (denoised) {
        for (const auto& n : a.var.index) c.add_var_names(n);
      }
    }
    if (!labels.empty()) {
      c.mutable_labels()->Add(labels.begin() + r, labels.begin() + end);
    } else if (end > r) {
      c.mutable_values()->Add(m.values.begin() + r * m.n_cols, m.values.begin() + end * m.n_cols);
    }
    if (ctx->IsCancelled() || !writer->Write(c)) return absl::CancelledError("client went away");
    metrics_->BytesDownloaded(static_cast<double>((end - r) * cols * 4));
    if (m.n_rows == 0) break;
  }
  return absl::OkStatus();
}

grpc::Status CandiesService::ListModels(grpc::ServerContext*, const v1::ListModelsRequest*,
                                        v1::ListModelsResponse* out) {
  const absl::Time t0 = absl::Now();
  for (v1::Model& m : models_->List()) *out->add_models() = std::move(m);
  out->set_resident_bytes(models_->resident_bytes());
  out->set_budget_bytes(models_->budget_bytes());
  return Done("ListModels", t0, absl::OkStatus());
}

grpc::Status CandiesService::GetModel(grpc::ServerContext*, const v1::GetModelRequest* req,
                                      v1::Model* out) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("GetModel", t0, Invalid("id", "is empty"));
  auto m = models_->Get(req->id());
  if (m.ok()) *out = *m;
  return Done("GetModel", t0, m.status());
}

grpc::Status CandiesService::LoadModel(grpc::ServerContext*, const v1::LoadModelRequest* req,
                                       v1::Model* out) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("LoadModel", t0, Invalid("id", "is empty"));
  auto m = models_->Load(req->id());
  if (m.ok()) *out = *m;
  return Done("LoadModel", t0, m.status());
}

grpc::Status CandiesService::UnloadModel(grpc::ServerContext*, const v1::UnloadModelRequest* req,
                                         v1::Model* out) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("UnloadModel", t0, Invalid("id", "is empty"));
  auto m = models_->Unload(req->id());
  if (m.ok()) *out = *m;
  return Done("UnloadModel", t0, m.status());
}

grpc::Status CandiesService::PinModel(grpc::ServerContext*, const v1::PinModelRequest* req,
                                      v1::Model* out) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("PinModel", t0, Invalid("id", "is empty"));
  auto m = models_->Pin(req->id(), req->pin());
  if (m.ok()) *out = *m;
  return Done("PinModel", t0, m.status());
}

grpc::Status CandiesService::DeleteModel(grpc::ServerContext*, const v1::DeleteModelRequest* req,
                                         v1::DeleteModelResponse*) {
  const absl::Time t0 = absl::Now();
  if (req->id().empty()) return Done("DeleteModel", t0, Invalid("id", "is empty"));
  return Done("DeleteModel", t0, models_->Delete(req->id()));
}

}  // namespace candies::server
