#include "server/service.h"

#include <filesystem>
#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "core/util/status_macros.h"
#include "server/errors.h"
#include "server/log.h"
#include "server/upload_assembler.h"

namespace candies::server {
namespace fs = std::filesystem;

namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string OwnerOf(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("x-candies-owner");
  if (it == md.end() || it->second.empty()) return "default";
  return std::string(it->second.data(), it->second.size());
}

bool OneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return true;
  }
  return false;
}

}  // namespace

CandiesService::CandiesService(ServiceOptions options, Store* store, JobBackend* backend,
                               Metrics* metrics)
    : options_(std::move(options)), store_(store), backend_(backend), metrics_(metrics) {
  models_ = std::make_unique<ModelRegistry>(
      options_.model_memory_budget, store_, backend_,
      [this](int n, int64_t bytes) { metrics_->SetModels(n, bytes); });
  if (absl::Status s = models_->LoadPinned(); !s.ok()) {
    LogLine("warn", "some pinned models did not load", absl::StrCat("error=\"", s.ToString(), "\""));
  }
  model_backend_ = std::make_unique<ModelBackend>(backend_, models_.get());
  tracker_ = std::make_unique<JobTracker>(store_, metrics_, models_.get());
  results_ = std::make_unique<ResultReader>(store_, metrics_, options_.fetch_chunk_bytes);
  scheduler_ = std::make_unique<Scheduler>(options_.scheduler, model_backend_.get(),
                                           tracker_->Listener());
  tracker_->Attach(scheduler_.get());
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
  tracker_->UpdateGauges();
}

CandiesService::~CandiesService() { Shutdown(); }

void CandiesService::Shutdown() {
  tracker_->Shutdown();
  scheduler_->Shutdown();
}

grpc::Status CandiesService::Done(const char* method, absl::Time start,
                                  const absl::Status& status) {
  metrics_->Rpc(method, std::string(absl::StatusCodeToString(status.code())),
                absl::ToDoubleSeconds(absl::Now() - start));
  return ToGrpc(status);
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
  UploadAssembler upload({options_.max_upload_bytes, options_.max_obs_columns});
  const std::string owner = OwnerOf(ctx);
  v1::UploadChunk chunk;
  while (reader->Read(&chunk)) {
    if (upload.has_header() && ctx->IsCancelled()) {
      return absl::CancelledError("upload cancelled by the client");
    }
    const bool was_header = !upload.has_header();
    CANDIES_RETURN_IF_ERROR(upload.Add(chunk));
    // Refuse an owner already over quota before reading the body.
    if (was_header) CANDIES_RETURN_IF_ERROR(CheckOwnerQuotas(owner, 0));
  }
  CANDIES_ASSIGN_OR_RETURN(AssembledUpload a, upload.Finish());
  v1::Dataset d;
  d.set_id(NewId("ds"));
  d.set_name(a.name);
  d.set_kind(a.kind);
  d.set_n_obs(a.n_obs);
  d.set_n_vars(a.n_vars);
  d.set_owner(owner);
  d.set_created_unix(NowUnix());
  d.set_source("upload");
  CANDIES_RETURN_IF_ERROR(CheckOwnerQuotas(owner, a.wire_bytes));
  CANDIES_RETURN_IF_ERROR(store_->PutDataset(d, a.adata));
  metrics_->BytesUploaded(static_cast<double>(a.wire_bytes));
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
    tracker_->UpdateGauges();
    tracker_->Decorate(&job);
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
  tracker_->Decorate(out);
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
      tracker_->Decorate(j, &positions);
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
  return Done("WatchJob", t0,
              tracker_->Watch(
                  req->id(), [&](const v1::JobEvent& e) { return writer->Write(e); },
                  [&] { return ctx->IsCancelled(); }));
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
    tracker_->Decorate(out);
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
    return results_->Fetch(job, req->part(), [&](const v1::ResultChunk& c) {
      return !ctx->IsCancelled() && writer->Write(c);
    });
  };
  return Done("FetchResult", t0, run());
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
