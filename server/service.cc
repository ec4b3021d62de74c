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

uint64_t Fnv1a64(const void* data, size_t n, uint64_t state) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    state ^= p[i];
    state *= 1099511628211ull;
  }
  return state;
}

CandiesService::CandiesService(ServiceOptions options, Store* store, JobBackend* backend,
                               Metrics* metrics)
    : options_(std::move(options)), store_(store), backend_(backend), metrics_(metrics) {
  SchedulerListener l;
  l.on_start = [this](const std::string& id) { OnStart(id); };
  l.on_progress = [this](const std::string& id, const ProgressEvent& e) { OnProgress(id, e); };
  l.on_finish = [this](const std::string& id, FinalState s, const std::string& d, double t) {
    OnFinish(id, s, d, t);
  };
  scheduler_ = std::make_unique<Scheduler>(options_.scheduler, backend_, std::move(l));
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

grpc::Status CandiesService::Done(const char* method, const absl::Status& status) {
  metrics_->Rpc(method, std::string(absl::StatusCodeToString(status.code())));
  return ToGrpc(status);
}

void CandiesService::UpdateGauges() {
  metrics_->SetQueueDepth(scheduler_->queued());
  metrics_->SetRunning(scheduler_->running());
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
  spec.result_path = store_->ResultPath(job.id());
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

void CandiesService::OnProgress(const std::string& id, const ProgressEvent& e) {
  absl::MutexLock lock(&mu_);
  Live& live = live_[id];
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
  auto run = [&]() -> absl::Status {
    v1::UploadChunk chunk;
    if (!reader->Read(&chunk)) return Invalid("header", "the stream is empty");
    if (!chunk.has_header()) return Invalid("header", "the first chunk must carry the header");
    const v1::DatasetHeader h = chunk.header();
    if (h.n_obs() <= 0) return Invalid("header.n_obs", "must be > 0");
    if (h.n_vars() <= 0) return Invalid("header.n_vars", "must be > 0");
    if (h.n_obs() > INT64_MAX / 4 / h.n_vars() ||
        h.n_obs() * h.n_vars() * 4 > options_.max_upload_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("header: ", h.n_obs(), " x ", h.n_vars(), " float32 exceeds max_upload_bytes = ",
                       options_.max_upload_bytes));
    }
    if (h.obs_names_size() != 0 && h.obs_names_size() != h.n_obs()) {
      return Invalid("header.obs_names", absl::StrCat("has ", h.obs_names_size(),
                                                      " names, want n_obs = ", h.n_obs()));
    }
    {
      // Spots are matched across modalities by name: names must be unique.
      std::set<std::string> seen;
      for (const auto& n : h.obs_names()) {
        if (!seen.insert(n).second) return Invalid("header.obs_names", absl::StrCat("duplicate '", n, "'"));
      }
    }
    if (h.var_names_size() != 0 && h.var_names_size() != h.n_vars()) {
      return Invalid("header.var_names", absl::StrCat("has ", h.var_names_size(),
                                                      " names, want n_vars = ", h.n_vars()));
    }
    if (h.spatial_size() != 2 * h.n_obs()) {
      return Invalid("header.spatial", absl::StrCat("has ", h.spatial_size(),
                                                    " values, want 2 * n_obs = ", 2 * h.n_obs()));
    }
    const int64_t want = h.n_obs() * h.n_vars();
    std::vector<float> x;
    x.reserve(static_cast<size_t>(want));
    uint64_t fnv = 14695981039346656037ull;
    uint64_t checksum = 0;
    while (reader->Read(&chunk)) {
      if (ctx->IsCancelled()) return absl::CancelledError("upload cancelled by the client");
      if (chunk.has_header()) return Invalid("header", "sent twice");
      const auto& v = chunk.rows().values();
      if (v.size() % h.n_vars() != 0) {
        return Invalid("rows.values", absl::StrCat("block of ", v.size(),
                                                   " values is not whole rows of n_vars = ", h.n_vars()));
      }
      if (static_cast<int64_t>(x.size()) + v.size() > want) {
        return Invalid("rows.values", absl::StrCat("more than n_obs * n_vars = ", want, " values"));
      }
      fnv = Fnv1a64(v.data(), v.size() * sizeof(float), fnv);
      x.insert(x.end(), v.begin(), v.end());
      if (chunk.checksum_fnv1a64() != 0) checksum = chunk.checksum_fnv1a64();
    }
    if (static_cast<int64_t>(x.size()) != want) {
      return Invalid("rows.values", absl::StrCat("got ", x.size(), " values, want n_obs * n_vars = ",
                                                 want));
    }
    if (checksum != 0 && checksum != fnv) {
      return absl::DataLossError(absl::StrCat("checksum_fnv1a64: client sent ", checksum,
                                              ", server computed ", fnv));
    }
    AnnData a;
    a.X = Matrix::Dense(h.n_obs(), h.n_vars(), std::move(x));
    for (int64_t i = 0; i < h.n_obs(); ++i) {
      a.obs.index.push_back(h.obs_names_size() ? h.obs_names(static_cast<int>(i)) : absl::StrCat(i));
    }
    for (int64_t j = 0; j < h.n_vars(); ++j) {
      a.var.index.push_back(h.var_names_size() ? h.var_names(static_cast<int>(j)) : absl::StrCat(j));
    }
    a.obsm["spatial"] = Matrix::Dense(h.n_obs(), 2, {h.spatial().begin(), h.spatial().end()});
    v1::Dataset d;
    d.set_id(NewId("ds"));
    d.set_name(h.name());
    d.set_kind(h.kind());
    d.set_n_obs(h.n_obs());
    d.set_n_vars(h.n_vars());
    d.set_owner(OwnerOf(ctx));
    d.set_created_unix(NowUnix());
    d.set_source("upload");
    CANDIES_RETURN_IF_ERROR(store_->PutDataset(d, a));
    metrics_->BytesUploaded(static_cast<double>(want) * 4);
    *out = d;
    return absl::OkStatus();
  };
  return Done("UploadDataset", run());
}

grpc::Status CandiesService::RegisterDataset(grpc::ServerContext* ctx,
                                             const v1::RegisterDatasetRequest* req,
                                             v1::Dataset* out) {
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
  return Done("RegisterDataset", run());
}

grpc::Status CandiesService::GetDataset(grpc::ServerContext*, const v1::GetDatasetRequest* req,
                                        v1::Dataset* out) {
  if (req->id().empty()) return Done("GetDataset", Invalid("id", "is empty"));
  auto d = store_->GetDataset(req->id());
  if (d.ok()) *out = *d;
  return Done("GetDataset", d.status());
}

grpc::Status CandiesService::ListDatasets(grpc::ServerContext*, const v1::ListDatasetsRequest*,
                                          v1::ListDatasetsResponse* out) {
  for (auto& d : store_->ListDatasets()) *out->add_datasets() = std::move(d);
  return Done("ListDatasets", absl::OkStatus());
}

grpc::Status CandiesService::DeleteDataset(grpc::ServerContext*,
                                           const v1::DeleteDatasetRequest* req,
                                           v1::DeleteDatasetResponse*) {
  if (req->id().empty()) return Done("DeleteDataset", Invalid("id", "is empty"));
  return Done("DeleteDataset", store_->DeleteDataset(req->id()));
}

grpc::Status CandiesService::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                                       v1::Job* out) {
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
    for (const auto& [field, id] : {std::pair<std::string, std::string>{"mod1_dataset", r.mod1_dataset()},
                                    {"mod2_dataset", r.mod2_dataset()}}) {
      if (!store_->GetDataset(id).ok()) {
        return absl::NotFoundError(absl::StrCat(field, ": dataset ", id, " not found"));
      }
    }
    v1::Job job;
    job.set_id(NewId("job"));
    job.set_state(v1::JOB_STATE_QUEUED);
    *job.mutable_spec() = r;
    job.set_owner(OwnerOf(ctx));
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
  return Done("SubmitJob", run());
}

grpc::Status CandiesService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* req,
                                    v1::Job* out) {
  if (req->id().empty()) return Done("GetJob", Invalid("id", "is empty"));
  auto job = store_->GetJob(req->id());
  if (!job.ok()) return Done("GetJob", job.status());
  *out = *job;
  Decorate(out);
  return Done("GetJob", absl::OkStatus());
}

grpc::Status CandiesService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* req,
                                      v1::ListJobsResponse* out) {
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
  return Done("ListJobs", run());
}

grpc::Status CandiesService::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (req->id().empty()) return Done("WatchJob", Invalid("id", "is empty"));
  uint64_t seen = UINT64_MAX;
  int last_position = INT_MIN;
  while (true) {
    auto job = store_->GetJob(req->id());
    if (!job.ok()) return Done("WatchJob", job.status());
    v1::JobEvent e;
    bool changed = false;
    uint64_t now_version = 0;
    {
      absl::MutexLock lock(&mu_);
      now_version = version_;
      auto it = live_.find(req->id());
      if (it != live_.end() && !IsFinal(job->state())) e = it->second.event;
      if (shutting_down_) return Done("WatchJob", absl::UnavailableError("server is shutting down"));
    }
    if (IsFinal(job->state())) {
      e.set_state(job->state());
      e.set_stage(job->stage());
      e.set_error(job->error());
      e.set_queue_position(-1);
      writer->Write(e);
      return Done("WatchJob", absl::OkStatus());
    }
    if (e.state() == v1::JOB_STATE_UNSPECIFIED) e.set_state(job->state());
    const int position = e.state() == v1::JOB_STATE_QUEUED ? scheduler_->QueuePosition(req->id()) : -1;
    e.set_queue_position(position);
    if (now_version != seen || position != last_position) changed = true;
    if (changed) {
      if (!writer->Write(e)) return Done("WatchJob", absl::CancelledError("client went away"));
      seen = now_version;
      last_position = position;
    }
    if (ctx->IsCancelled()) return Done("WatchJob", absl::CancelledError("client went away"));
    // Wake on any change, or every 500 ms to notice a cancelled client.
    absl::MutexLock lock(&mu_);
    auto moved = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
    mu_.AwaitWithTimeout(absl::Condition(&moved), absl::Milliseconds(500));
  }
}

grpc::Status CandiesService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* req,
                                       v1::Job* out) {
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
  return Done("CancelJob", run());
}

grpc::Status CandiesService::FetchResult(grpc::ServerContext* ctx,
                                         const v1::FetchResultRequest* req,
                                         grpc::ServerWriter<v1::ResultChunk>* writer) {
  auto run = [&]() -> absl::Status {
    if (req->id().empty()) return Invalid("id", "is empty");
    CANDIES_ASSIGN_OR_RETURN(v1::Job job, store_->GetJob(req->id()));
    if (job.state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "id: job ", job.id(), " has no result (state ", v1::JobState_Name(job.state()), ")"));
    }
    const std::string path = store_->ResultPath(job.id());
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
  return Done("FetchResult", run());
}

}  // namespace candies::server
