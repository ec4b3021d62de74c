// The gRPC service, thin glue: validates requests (errors name the offending
// field), then hands off to the parts: UploadAssembler (upload streams), Store
// (state), Scheduler (execution), JobTracker (live progress, WatchJob),
// ResultReader (FetchResult), ModelRegistry and Metrics.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "candies/v1/candies.grpc.pb.h"
#include "server/backend.h"
#include "server/job_tracker.h"
#include "server/metrics.h"
#include "server/model_backend.h"
#include "server/model_registry.h"
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
  int max_page_size = 1000;             // ListJobs page_size limit
  int max_queued_per_owner = 100;       // one owner's queued jobs; more is RESOURCE_EXHAUSTED
  // Stored upload bytes (.h5ad files) of one owner; more is RESOURCE_EXHAUSTED.
  int64_t max_dataset_bytes_per_owner = int64_t{64} << 30;
  int max_obs_columns = 64;  // extra obs columns of one upload
  int64_t model_memory_budget = int64_t{4} << 30;  // resident trained models, bytes
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

  ModelRegistry& models() { return *models_; }

 private:
  // Records the RPC's code and latency (since `start`) and converts the status.
  grpc::Status Done(const char* method, absl::Time start, const absl::Status& status);
  absl::Status UploadImpl(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadChunk>* reader,
                          v1::Dataset* out);
  absl::Status CheckOwnerQuotas(const std::string& owner, int64_t new_bytes);
  absl::Status Enqueue(const v1::Job& job);

  const ServiceOptions options_;
  Store* const store_;
  JobBackend* const backend_;
  Metrics* const metrics_;

  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<ModelBackend> model_backend_;
  std::unique_ptr<JobTracker> tracker_;
  std::unique_ptr<ResultReader> results_;
  std::unique_ptr<Scheduler> scheduler_;  // last: its workers call back into the above
};

}  // namespace candies::server
