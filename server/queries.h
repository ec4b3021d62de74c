// The read paths of candiesd, shared by the gRPC service (server/service.h)
// and the HTTP/JSON API (server/http_api.h), so that both answer the same
// objects with the same isolation: a user sees their own datasets, jobs and
// results, their own models and the shared ones; an admin sees everything.
// Another user's object answers exactly the NotFound of a missing one.
// Transport-free: every call takes the caller's Principal.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "candies/v1/candies.pb.h"
#include "candies/v1/http_api.pb.h"
#include "server/auth.h"
#include "server/job_tracker.h"
#include "server/model_registry.h"
#include "server/result_reader.h"
#include "server/scheduler.h"
#include "server/store.h"

namespace candies::server {

struct QueryOptions {
  int max_page_size = 1000;  // ListJobs page_size limit (max-page-size)
  int workers = 1;           // for QueueStatus (workers)
  int max_queue = 1000;      // for QueueStatus (max-queue)
};

class Queries {
 public:
  // All must outlive the queries.
  Queries(QueryOptions options, Store* store, ModelRegistry* models, JobTracker* tracker,
          Scheduler* scheduler, ResultReader* results)
      : options_(options),
        store_(store),
        models_(models),
        tracker_(tracker),
        scheduler_(scheduler),
        results_(results) {}

  // The object if `who` may see it, as stored (jobs without live state).
  absl::StatusOr<v1::Dataset> SeenDataset(const Principal& who, const std::string& id);
  absl::StatusOr<v1::Job> SeenJob(const Principal& who, const std::string& id);
  absl::StatusOr<v1::Model> SeenModel(const Principal& who, const std::string& id);

  // GetJob: SeenJob with the live stage and queue position.
  absl::StatusOr<v1::Job> GetJob(const Principal& who, const std::string& id);
  // ListJobs: newest first, paged; errors name page_size / page_token.
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const Principal& who, const v1::ListJobsRequest& req);
  v1::ListDatasetsResponse ListDatasets(const Principal& who);
  v1::ListModelsResponse ListModels(const Principal& who);
  // The scheduler's counts and the caller's queued and running jobs.
  v1::QueueStatus Queue(const Principal& who);
  // What the job's result file records (FailedPrecondition unless SUCCEEDED).
  absl::StatusOr<v1::JobMetrics> JobMetrics(const Principal& who, const std::string& id);
  // The job's HTML report (FetchResult part "report"); ResourceExhausted when
  // it is larger than `max_bytes`.
  absl::StatusOr<std::string> Report(const Principal& who, const std::string& id, int64_t max_bytes);

 private:
  const QueryOptions options_;
  Store* const store_;
  ModelRegistry* const models_;
  JobTracker* const tracker_;
  Scheduler* const scheduler_;
  ResultReader* const results_;
};

}  // namespace candies::server
