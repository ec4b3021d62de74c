// The gRPC service, thin glue: validates requests (errors name the offending
// field), then hands off to the parts: UploadAssembler (upload streams), Store
// (state), Scheduler (execution), JobTracker (live progress, WatchJob),
// ResultReader (FetchResult), ModelRegistry and Metrics. What a caller may see
// is decided by Queries, which the HTTP/JSON API (server/http_api.h) shares.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "candies/v1/candies.grpc.pb.h"
#include "server/auth.h"
#include "server/backend.h"
#include "server/file_validator.h"
#include "server/job_tracker.h"
#include "server/metrics.h"
#include "server/model_backend.h"
#include "server/model_registry.h"
#include "server/queries.h"
#include "server/result_reader.h"
#include "server/scheduler.h"
#include "server/store.h"

namespace candies::server {

struct ServiceOptions {
  // Largest dataset upload: n_obs * n_vars * 4 bytes of X (plus names) must fit.
  int64_t max_upload_bytes = int64_t{4} << 30;
  // RegisterDataset only accepts files whose real path lies under one of these.
  std::vector<std::string> allowed_dirs;
  std::string device = "auto";  // passed to the backend
  int64_t fetch_chunk_bytes = 1 << 20;  // FetchResult chunk size
  int max_page_size = 1000;             // ListJobs page_size limit (max-page-size)
  int metrics_cache_entries = 256;      // jobs whose metrics stay cached (http-metrics-cache-entries)
  int max_queued_per_owner = 100;       // one owner's queued jobs; more is RESOURCE_EXHAUSTED
  // Stored upload bytes (.h5ad files) of one owner; more is RESOURCE_EXHAUSTED.
  int64_t max_dataset_bytes_per_owner = int64_t{64} << 30;
  int max_obs_columns = 64;  // extra obs columns of one upload
  int64_t model_memory_budget = int64_t{4} << 30;  // resident trained models, bytes
  // Identities (docs/SECURITY.md). Required: without it every call is
  // UNAUTHENTICATED. Must outlive the service.
  Authenticator* auth = nullptr;
  int max_user_priority = 0;  // SubmitJob priority above this: admins only
  int64_t max_deadline_seconds = int64_t{7} * 24 * 3600;  // SubmitJob deadline_seconds bound
  int max_streams = 256;           // open WatchJob streams in total
  int max_streams_per_user = 16;   // open WatchJob streams of one identity
  // Every uploaded or registered file is parsed in a sandboxed child
  // (candies-validate) before the daemon accepts it; limits: validate-* and
  // read-max-* config keys.
  ValidationConfig validation;
  // Largest file RegisterDataset copies into the data dir.
  int64_t max_register_bytes = int64_t{64} << 30;
  SchedulerOptions scheduler;
};

class CandiesService final : public v1::Candies::Service {
 public:
  // `store`, `backend` and `metrics` must outlive the service. Jobs the store
  // holds as QUEUED are handed to the scheduler again.
  CandiesService(ServiceOptions options, Store* store, JobBackend* backend, Metrics* metrics);
  ~CandiesService() override;
  // Stops the workers (interrupted jobs stay RUNNING in the store and are
  // requeued by the next Store::Open) and ends open WatchJob streams.
  void Shutdown();

  grpc::Status UploadDataset(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadChunk>* reader,
                             v1::Dataset* out) override;
  grpc::Status RegisterDataset(grpc::ServerContext* ctx, const v1::RegisterDatasetRequest* req,
                               v1::Dataset* out) override;
  grpc::Status GetDataset(grpc::ServerContext* ctx, const v1::GetDatasetRequest* req,
                          v1::Dataset* out) override;
  grpc::Status ListDatasets(grpc::ServerContext* ctx, const v1::ListDatasetsRequest* req,
                            v1::ListDatasetsResponse* out) override;
  grpc::Status DeleteDataset(grpc::ServerContext* ctx, const v1::DeleteDatasetRequest* req,
                             v1::DeleteDatasetResponse* out) override;
  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                         v1::Job* out) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                      v1::Job* out) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                        v1::ListJobsResponse* out) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                         v1::Job* out) override;
  grpc::Status FetchResult(grpc::ServerContext* ctx, const v1::FetchResultRequest* req,
                           grpc::ServerWriter<v1::ResultChunk>* writer) override;
  grpc::Status ListModels(grpc::ServerContext* ctx, const v1::ListModelsRequest* req,
                          v1::ListModelsResponse* out) override;
  grpc::Status GetModel(grpc::ServerContext* ctx, const v1::GetModelRequest* req,
                        v1::Model* out) override;
  grpc::Status LoadModel(grpc::ServerContext* ctx, const v1::LoadModelRequest* req,
                         v1::Model* out) override;
  grpc::Status UnloadModel(grpc::ServerContext* ctx, const v1::UnloadModelRequest* req,
                           v1::Model* out) override;
  grpc::Status PinModel(grpc::ServerContext* ctx, const v1::PinModelRequest* req,
                        v1::Model* out) override;
  grpc::Status DeleteModel(grpc::ServerContext* ctx, const v1::DeleteModelRequest* req,
                           v1::DeleteModelResponse* out) override;
  grpc::Status PublishModel(grpc::ServerContext* ctx, const v1::PublishModelRequest* req,
                            v1::Model* out) override;

  ModelRegistry& models() { return *models_; }
  // The read paths (isolation included) for the HTTP/JSON API.
  Queries& queries() { return *queries_; }
  // Bytes of `owner`'s quota held by uploads still streaming (0 when none).
  int64_t ReservedUploadBytes(const std::string& owner);

 private:
  enum class Audit { kNo, kYes };  // kYes: a mutating RPC, logged as an audit line
  // The body of an RPC: runs as `who`; sets `object` to the id it acts on.
  using Body = std::function<absl::Status(const Principal& who, std::string* object)>;
  // Every RPC goes through here: authenticate (UNAUTHENTICATED otherwise), run
  // `body`, record the code and latency, write the audit line, convert.
  grpc::Status Call(const char* method, Audit audit, grpc::ServerContext* ctx, const Body& body);
  // Visible, then: admins always; the owner too when `owner_may`.
  absl::Status MayManageModel(const Principal& who, const char* method, const std::string& id,
                              bool owner_may);
  absl::Status ValidateSubmit(const Principal& who, v1::SubmitJobRequest& r);
  absl::Status AcquireStream(const std::string& user);  // WatchJob stream limits
  void ReleaseStream(const std::string& user);
  absl::Status UploadImpl(const Principal& who, grpc::ServerContext* ctx,
                          grpc::ServerReader<v1::UploadChunk>* reader, v1::Dataset* out);
  // Reserves `bytes` of the owner's max-dataset-bytes-per-owner for an upload
  // in progress: the check and the reservation are one step under quota_mu_,
  // so concurrent uploads cannot together pass the quota.
  absl::Status ReserveQuota(const std::string& owner, int64_t bytes);
  void ReleaseQuota(const std::string& owner, int64_t bytes);
  absl::Status Enqueue(const v1::Job& job);

  const ServiceOptions options_;
  Authenticator* const auth_;
  Store* const store_;
  JobBackend* const backend_;
  Metrics* const metrics_;

  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<ModelBackend> model_backend_;
  std::unique_ptr<JobTracker> tracker_;
  std::unique_ptr<ResultReader> results_;
  absl::Mutex quota_mu_;
  std::map<std::string, int64_t> reserved_ ABSL_GUARDED_BY(quota_mu_);  // per owner
  absl::Mutex streams_mu_;
  int streams_total_ ABSL_GUARDED_BY(streams_mu_) = 0;
  std::map<std::string, int> streams_by_user_ ABSL_GUARDED_BY(streams_mu_);

  // Destroyed before the parts its workers call back into.
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Queries> queries_;  // reads the above; no threads of its own
};

}  // namespace candies::server
