#include "server/service.h"

#include <algorithm>
#include <filesystem>
#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "core/util/status_macros.h"
#include "server/errors.h"
#include "server/job_vocabulary.h"
#include "server/log.h"
#include "server/safe_open.h"
#include "server/upload_assembler.h"

namespace candies::server {
namespace fs = std::filesystem;

namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status AdminOnly(const char* method) {
  return absl::PermissionDeniedError(absl::StrCat(method, ": admin only"));
}

}  // namespace

CandiesService::CandiesService(ServiceOptions options, Store* store, JobBackend* backend,
                               Metrics* metrics)
    : options_(std::move(options)),
      auth_(options_.auth),
      store_(store),
      backend_(backend),
      metrics_(metrics) {
  models_ = std::make_unique<ModelRegistry>(
      options_.model_memory_budget, store_, backend_,
      [this](int n, int64_t bytes) { metrics_->SetModels(n, bytes); });
  if (absl::Status s = models_->LoadPinned(); !s.ok()) {
    LogLine("warn", "some pinned models did not load", {{"error", s.ToString()}});
  }
  model_backend_ = std::make_unique<ModelBackend>(backend_, models_.get());
  tracker_ = std::make_unique<JobTracker>(store_, metrics_, models_.get());
  results_ = std::make_unique<ResultReader>(store_, metrics_, options_.fetch_chunk_bytes,
                                            options_.metrics_cache_entries);
  scheduler_ = std::make_unique<Scheduler>(options_.scheduler, model_backend_.get(),
                                           tracker_->Listener());
  tracker_->Attach(scheduler_.get());
  QueryOptions q;
  q.max_page_size = options_.max_page_size;
  q.workers = scheduler_->slots();
  q.max_queue = options_.scheduler.max_queue;
  queries_ = std::make_unique<Queries>(q, store_, models_.get(), tracker_.get(), scheduler_.get(),
                                       results_.get());
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

grpc::Status CandiesService::Call(const char* method, Audit audit, grpc::ServerContext* ctx,
                                  const Body& body) {
  const absl::Time t0 = absl::Now();
  absl::StatusOr<Principal> who =
      auth_ != nullptr ? auth_->Authenticate(*ctx)
                       : absl::StatusOr<Principal>(absl::UnauthenticatedError("no authenticator"));
  std::string object;
  absl::Status status = who.ok() ? body(*who, &object) : who.status();
  metrics_->Rpc(method, std::string(absl::StatusCodeToString(status.code())),
                absl::ToDoubleSeconds(absl::Now() - t0));
  if (audit == Audit::kYes || !who.ok()) {
    LogLine(status.ok() ? "info" : "warn", "audit",
            {{"rpc", method},
             {"identity", who.ok() ? who->name : "-"},
             {"role", who.ok() ? RoleName(who->role) : "-"},
             {"peer", ctx->peer()},
             {"object", object.empty() ? "-" : object},
             {"code", absl::StatusCodeToString(status.code())}});
  }
  return ToGrpc(status);
}

absl::Status CandiesService::MayManageModel(const Principal& who, const char* method,
                                            const std::string& id, bool owner_may) {
  CANDIES_ASSIGN_OR_RETURN(v1::Model m, queries_->SeenModel(who, id));
  if (who.admin() || (owner_may && m.owner() == who.name)) return absl::OkStatus();
  return owner_may ? absl::PermissionDeniedError(
                         absl::StrCat(method, ": only the model's owner or an admin may"))
                   : AdminOnly(method);
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
  // A stored job from before the enums carries text: read the same way.
  CANDIES_ASSIGN_OR_RETURN(JobSettings settings, JobSettingsFromRequest(r));
  CANDIES_ASSIGN_OR_RETURN(spec.mod1_kind, FromProto(d1.kind(), ModalityKind::kRna, "mod1 kind"));
  CANDIES_ASSIGN_OR_RETURN(spec.mod2_kind, FromProto(d2.kind(), ModalityKind::kProtein, "mod2 kind"));
  spec.kind = settings.kind;
  spec.n_clusters = settings.n_clusters;
  spec.low_quality = settings.low_quality;
  spec.preset = settings.preset;
  spec.seed = r.seed();
  spec.labels_key = r.labels_key();
  spec.device = options_.device;
  spec.cluster_method = settings.cluster_method;  // none: the preset's (resolved by the backend)
  spec.model_id = r.model_id();
  if (!spec.model_id.empty()) spec.model_dir = store_->ModelDir(spec.model_id);
  if (!job.model_id().empty()) spec.save_model_dir = store_->ModelDir(job.model_id());
  spec.result_path = store_->ResultPath(job.id());
  spec.denoised_path = store_->DenoisedPath(job.id());
  spec.report_path = store_->ReportPath(job.id());
  spec.pictures_dir = store_->PicturesDir(job.id());
  // Duration arithmetic saturates: no overflow even for a row from before
  // max-deadline-seconds existed.
  const absl::Time deadline =
      r.deadline_seconds() > 0
          ? absl::FromUnixSeconds(job.created_unix()) + absl::Seconds(r.deadline_seconds())
          : absl::InfiniteFuture();
  return scheduler_->Submit(std::move(spec), r.priority(), deadline);
}

grpc::Status CandiesService::UploadDataset(grpc::ServerContext* ctx,
                                           grpc::ServerReader<v1::UploadChunk>* reader,
                                           v1::Dataset* out) {
  return Call("UploadDataset", Audit::kYes, ctx, [&](const Principal& who, std::string* object) {
    absl::Status s = UploadImpl(who, ctx, reader, out);
    if (s.ok()) *object = out->id();
    return s;
  });
}

absl::Status CandiesService::ReserveQuota(const std::string& owner, int64_t bytes) {
  absl::MutexLock lock(&quota_mu_);
  int64_t stored = 0;
  for (const v1::Dataset& d : store_->ListDatasets()) {
    if (d.owner() == owner && d.source() == "upload") stored += d.size_bytes();
  }
  int64_t& reserved = reserved_[owner];
  if (stored + reserved + bytes > options_.max_dataset_bytes_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "owner ", owner, ": ", stored, " stored + ", reserved,
        " reserved by uploads in progress + ", bytes,
        " new bytes exceed max-dataset-bytes-per-owner = ", options_.max_dataset_bytes_per_owner,
        " (delete datasets with DeleteDataset)"));
  }
  reserved += bytes;
  return absl::OkStatus();
}

int64_t CandiesService::ReservedUploadBytes(const std::string& owner) {
  absl::MutexLock lock(&quota_mu_);
  auto it = reserved_.find(owner);
  return it == reserved_.end() ? 0 : it->second;
}

void CandiesService::ReleaseQuota(const std::string& owner, int64_t bytes) {
  absl::MutexLock lock(&quota_mu_);
  auto it = reserved_.find(owner);
  if (it == reserved_.end()) return;
  it->second -= bytes;
  if (it->second <= 0) reserved_.erase(it);
}

absl::Status CandiesService::UploadImpl(const Principal& who, grpc::ServerContext* ctx,
                                        grpc::ServerReader<v1::UploadChunk>* reader,
                                        v1::Dataset* out) {
  UploadAssembler upload({options_.max_upload_bytes, options_.max_obs_columns});
  const std::string& owner = who.name;
  // Bytes of the owner's quota this stream holds; given back however it ends
  // (the stored dataset then counts by its file size).
  int64_t reserved = 0;
  struct Release {
    CandiesService* self;
    const std::string& owner;
    const int64_t& bytes;
    ~Release() { self->ReleaseQuota(owner, bytes); }
  } release{this, owner, reserved};
  v1::UploadChunk chunk;
  while (reader->Read(&chunk)) {
    if (upload.has_header() && ctx->IsCancelled()) {
      return absl::CancelledError("upload cancelled by the client");
    }
    CANDIES_RETURN_IF_ERROR(upload.Add(chunk));
    // The declared size is reserved at the header, before any body is read;
    // real bytes beyond it (CSR) are reserved as they arrive.
    const int64_t need = std::max(upload.declared_bytes(), upload.wire_bytes());
    if (need > reserved) {
      CANDIES_RETURN_IF_ERROR(ReserveQuota(owner, need - reserved));
      reserved = need;
    }
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
  CANDIES_RETURN_IF_ERROR(store_->PutDataset(d, a.adata));
  // The matrix is on disk: free it before the sandbox forks (a 1 GB upload
  // otherwise doubles the daemon's page tables to copy and its peak memory).
  a.adata = AnnData();
  // The stored file is what jobs parse: it passes the same sandboxed check as
  // a registered one before the client learns its id.
  if (absl::StatusOr<ValidatedFile> v =
          ValidateInSandbox(store_->DatasetPath(d.id()), options_.validation);
      !v.ok()) {
    (void)store_->DeleteDataset(d.id());
    // The validator names the stored file; the client is told of "upload"
    // only, never the data dir's layout.
    const std::string stored = store_->DatasetPath(d.id());
    std::string msg(v.status().message());
    if (msg.rfind(stored, 0) == 0) msg = "upload" + msg.substr(stored.size());
    return absl::Status(v.status().code(), msg);
  }
  metrics_->BytesUploaded(static_cast<double>(a.wire_bytes));
  *out = d;
  return absl::OkStatus();
}

grpc::Status CandiesService::RegisterDataset(grpc::ServerContext* ctx,
                                             const v1::RegisterDatasetRequest* req,
                                             v1::Dataset* out) {
  return Call("RegisterDataset", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (!who.admin()) return AdminOnly("RegisterDataset");
    if (req->path().empty()) return Invalid("path", "is empty");
    // One answer for "missing", "not allowed" and "a link below the root":
    // the reply does not tell what exists on the server or where links lead.
    // The file is opened once, without following symlinks below the allowed
    // root; its bytes are copied into the data dir, validated there in the
    // sandbox, and only that copy is ever parsed by a job. A later swap of the
    // path (for a symlink to a file outside) changes nothing.
    absl::StatusOr<FileDescriptor> fd = OpenBeneath(req->path(), options_.allowed_dirs);
    if (!fd.ok()) {
      return absl::NotFoundError("path: not found, or not under an allowed dir (--allowed-dir)");
    }
    v1::Dataset d;
    d.set_id(NewId("ds"));
    const std::string path = store_->DatasetPath(d.id());
    const std::string tmp = path + ".tmp";
    absl::StatusOr<int64_t> bytes = CopyToNewFile(fd->get(), tmp, options_.max_register_bytes);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("path: ", req->path(), ": ", bytes.status().message(),
                                       " (max-register-bytes)"));
    }
    absl::StatusOr<ValidatedFile> v = ValidateInSandbox(tmp, options_.validation);
    if (!v.ok()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      // The validator names the temporary copy; the client knows its own path.
      std::string msg(v.status().message());
      if (msg.rfind(tmp, 0) == 0) msg = req->path() + msg.substr(tmp.size());
      return absl::Status(v.status().code(), msg);
    }
    CANDIES_RETURN_IF_ERROR(DurableRename(tmp, path));
    const std::string base = fs::path(req->path()).filename().string();
    d.set_name(req->name().empty() ? base : req->name());
    d.set_kind(req->kind());
    d.set_n_obs(v->n_obs);
    d.set_n_vars(v->n_vars);
    d.set_owner(who.name);
    d.set_created_unix(NowUnix());
    d.set_size_bytes(*bytes);
    d.set_source(req->path());
    CANDIES_RETURN_IF_ERROR(store_->PutDatasetRow(d, path, /*owned=*/true));
    *object = d.id();
    *out = d;
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::GetDataset(grpc::ServerContext* ctx, const v1::GetDatasetRequest* req,
                                        v1::Dataset* out) {
  return Call("GetDataset", Audit::kNo, ctx, [&](const Principal& who, std::string*) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_ASSIGN_OR_RETURN(*out, queries_->SeenDataset(who, req->id()));
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::ListDatasets(grpc::ServerContext* ctx, const v1::ListDatasetsRequest*,
                                          v1::ListDatasetsResponse* out) {
  return Call("ListDatasets", Audit::kNo, ctx, [&](const Principal& who, std::string*) {
    *out = queries_->ListDatasets(who);
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::DeleteDataset(grpc::ServerContext* ctx,
                                           const v1::DeleteDatasetRequest* req,
                                           v1::DeleteDatasetResponse*) {
  return Call("DeleteDataset", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_RETURN_IF_ERROR(queries_->SeenDataset(who, req->id()).status());
    return store_->DeleteDataset(req->id());
  });
}

absl::Status CandiesService::ValidateSubmit(const Principal& who, v1::SubmitJobRequest& r) {
  if (r.mod1_dataset().empty()) return Invalid("mod1_dataset", "is empty");
  if (r.mod2_dataset().empty()) return Invalid("mod2_dataset", "is empty");
  // The settings with the vocabulary and checks the CLI uses (core/util/job_options.h);
  // the stored request then carries explicit enums.
  CANDIES_ASSIGN_OR_RETURN(JobSettings settings, JobSettingsFromRequest(r));
  SetRequestSettings(settings, &r);
  if (r.deadline_seconds() < 0) return Invalid("deadline_seconds", "must be >= 0");
  if (r.deadline_seconds() > options_.max_deadline_seconds) {
    return Invalid("deadline_seconds", absl::StrCat(r.deadline_seconds(), " exceeds max-deadline-seconds = ",
                                                    options_.max_deadline_seconds));
  }
  if (!who.admin() && r.priority() > options_.max_user_priority) {
    return absl::PermissionDeniedError(absl::StrCat(
        "priority: ", r.priority(), " is above max-user-priority = ", options_.max_user_priority,
        " (higher priorities are for admins)"));
  }
  if (!r.model_id().empty() && !queries_->SeenModel(who, r.model_id()).ok()) {
    return absl::NotFoundError(absl::StrCat("model_id: model ", r.model_id(), " not found"));
  }
  for (const auto& [field, id] : {std::pair<std::string, std::string>{"mod1_dataset", r.mod1_dataset()},
                                  {"mod2_dataset", r.mod2_dataset()}}) {
    if (!queries_->SeenDataset(who, id).ok()) {
      return absl::NotFoundError(absl::StrCat(field, ": dataset ", id, " not found"));
    }
  }
  return absl::OkStatus();
}

grpc::Status CandiesService::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                                       v1::Job* out) {
  return Call("SubmitJob", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    v1::SubmitJobRequest r = *req;
    CANDIES_RETURN_IF_ERROR(ValidateSubmit(who, r));
    const std::string& owner = who.name;
    int queued_by_owner = 0;
    for (const v1::Job& j : store_->ListJobs(v1::JOB_STATE_QUEUED)) queued_by_owner += j.owner() == owner;
    if (queued_by_owner >= options_.max_queued_per_owner) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "owner ", owner, " has ", queued_by_owner, " queued jobs (max-queued-per-owner = ",
          options_.max_queued_per_owner, ")"));
    }
    v1::Job job;
    job.set_id(NewId("job"));
    *object = job.id();
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
  });
}

grpc::Status CandiesService::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                                    v1::Job* out) {
  return Call("GetJob", Audit::kNo, ctx, [&](const Principal& who, std::string*) -> absl::Status {
    CANDIES_ASSIGN_OR_RETURN(*out, queries_->GetJob(who, req->id()));
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                                      v1::ListJobsResponse* out) {
  return Call("ListJobs", Audit::kNo, ctx, [&](const Principal& who, std::string*) -> absl::Status {
    CANDIES_ASSIGN_OR_RETURN(*out, queries_->ListJobs(who, *req));
    return absl::OkStatus();
  });
}

absl::Status CandiesService::AcquireStream(const std::string& user) {
  absl::MutexLock lock(&streams_mu_);
  int& mine = streams_by_user_[user];
  if (streams_total_ >= options_.max_streams) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "WatchJob: ", streams_total_, " streams are open (max-streams = ", options_.max_streams, ")"));
  }
  if (mine >= options_.max_streams_per_user) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "WatchJob: ", user, " has ", mine, " streams open (max-streams-per-user = ",
        options_.max_streams_per_user, ")"));
  }
  ++mine;
  ++streams_total_;
  return absl::OkStatus();
}

void CandiesService::ReleaseStream(const std::string& user) {
  absl::MutexLock lock(&streams_mu_);
  if (--streams_by_user_[user] <= 0) streams_by_user_.erase(user);
  --streams_total_;
}

grpc::Status CandiesService::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  return Call("WatchJob", Audit::kNo, ctx, [&](const Principal& who, std::string*) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_RETURN_IF_ERROR(queries_->SeenJob(who, req->id()).status());
    CANDIES_RETURN_IF_ERROR(AcquireStream(who.name));
    absl::Status s = tracker_->Watch(
        req->id(), [&](const v1::JobEvent& e) { return writer->Write(e); },
        [&] { return ctx->IsCancelled(); });
    ReleaseStream(who.name);
    return s;
  });
}

grpc::Status CandiesService::CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                                       v1::Job* out) {
  return Call("CancelJob", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_ASSIGN_OR_RETURN(v1::Job job, queries_->SeenJob(who, req->id()));
    if (IsFinal(job.state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("id: job ", job.id(), " already ended (", v1::JobState_Name(job.state()), ")"));
    }
    CANDIES_RETURN_IF_ERROR(scheduler_->Cancel(job.id()));
    // A queued job is final now; a running one ends at its next check.
    CANDIES_ASSIGN_OR_RETURN(*out, store_->GetJob(req->id()));
    tracker_->Decorate(out);
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::FetchResult(grpc::ServerContext* ctx,
                                         const v1::FetchResultRequest* req,
                                         grpc::ServerWriter<v1::ResultChunk>* writer) {
  return Call("FetchResult", Audit::kNo, ctx, [&](const Principal& who, std::string*) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_ASSIGN_OR_RETURN(v1::Job job, queries_->SeenJob(who, req->id()));
    return results_->Fetch(job, req->part(), [&](const v1::ResultChunk& c) {
      return !ctx->IsCancelled() && writer->Write(c);
    });
  });
}

grpc::Status CandiesService::ListModels(grpc::ServerContext* ctx, const v1::ListModelsRequest*,
                                        v1::ListModelsResponse* out) {
  return Call("ListModels", Audit::kNo, ctx, [&](const Principal& who, std::string*) {
    *out = queries_->ListModels(who);
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::GetModel(grpc::ServerContext* ctx, const v1::GetModelRequest* req,
                                      v1::Model* out) {
  return Call("GetModel", Audit::kNo, ctx, [&](const Principal& who, std::string*) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_ASSIGN_OR_RETURN(*out, queries_->SeenModel(who, req->id()));
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::LoadModel(grpc::ServerContext* ctx, const v1::LoadModelRequest* req,
                                       v1::Model* out) {
  return Call("LoadModel", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_RETURN_IF_ERROR(MayManageModel(who, "LoadModel", req->id(), false));
    CANDIES_ASSIGN_OR_RETURN(*out, models_->Load(req->id()));
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::UnloadModel(grpc::ServerContext* ctx, const v1::UnloadModelRequest* req,
                                         v1::Model* out) {
  return Call("UnloadModel", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_RETURN_IF_ERROR(MayManageModel(who, "UnloadModel", req->id(), false));
    CANDIES_ASSIGN_OR_RETURN(*out, models_->Unload(req->id()));
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::PinModel(grpc::ServerContext* ctx, const v1::PinModelRequest* req,
                                      v1::Model* out) {
  return Call("PinModel", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_RETURN_IF_ERROR(MayManageModel(who, "PinModel", req->id(), false));
    CANDIES_ASSIGN_OR_RETURN(*out, models_->Pin(req->id(), req->pin()));
    return absl::OkStatus();
  });
}

grpc::Status CandiesService::DeleteModel(grpc::ServerContext* ctx, const v1::DeleteModelRequest* req,
                                         v1::DeleteModelResponse*) {
  return Call("DeleteModel", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_RETURN_IF_ERROR(MayManageModel(who, "DeleteModel", req->id(), true));
    return models_->Delete(req->id());
  });
}

grpc::Status CandiesService::PublishModel(grpc::ServerContext* ctx, const v1::PublishModelRequest* req,
                                          v1::Model* out) {
  return Call("PublishModel", Audit::kYes, ctx, [&](const Principal& who, std::string* object) -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    *object = req->id();
    CANDIES_RETURN_IF_ERROR(MayManageModel(who, "PublishModel", req->id(), true));
    CANDIES_ASSIGN_OR_RETURN(*out, models_->Publish(req->id(), req->shared()));
    return absl::OkStatus();
  });
}

}  // namespace candies::server
