// FetchResult's reading side: streams a finished job's result file whole, or
// one array of it (an obsm embedding, the cluster labels, the denoised matrix)
// sliced into row blocks. gRPC-free: chunks go to a callback.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "candies/v1/candies.pb.h"
#include "candies/v1/http_api.pb.h"
#include "server/metrics.h"
#include "server/store.h"

namespace candies::server {

class ResultReader {
 public:
  // Returns false when the receiver went away.
  using ChunkSink = std::function<bool(const v1::ResultChunk&)>;

  // `store` and `metrics` must outlive the reader. `chunk_bytes`: the most
  // payload bytes of one chunk (fetch-chunk-bytes). `metrics_cache`: how many
  // jobs' ReadMetrics answers are kept (http-metrics-cache-entries).
  ResultReader(Store* store, Metrics* metrics, int64_t chunk_bytes, int metrics_cache = 256)
      : store_(store), metrics_(metrics), chunk_bytes_(chunk_bytes), cache_size_(metrics_cache) {}

  // `part`: empty or "h5ad" (the result file), "denoised_h5ad", or an array
  // name (see FetchResultRequest.part). FailedPrecondition unless the job
  // SUCCEEDED; errors name the field.
  absl::Status Fetch(const v1::Job& job, const std::string& part, const ChunkSink& write);
  // The numbers the result file records in uns["candies"] (metrics, stage
  // seconds, the denoised modality, warnings); empty when it records none.
  // FailedPrecondition unless the job SUCCEEDED. A result never changes once
  // written, so answers are cached (reading the file takes ~80 ms for the
  // demo job: ReadH5ad reads every obsm array too).
  absl::StatusOr<v1::JobMetrics> ReadMetrics(const v1::Job& job);

 private:
  absl::Status FetchFile(const v1::Job& job, const std::string& part, const ChunkSink& write);
  absl::Status FetchArray(const v1::Job& job, const std::string& part, const ChunkSink& write);

  absl::StatusOr<v1::JobMetrics> ReadMetricsFile(const v1::Job& job);

  Store* const store_;
  Metrics* const metrics_;
  const int64_t chunk_bytes_;
  const int cache_size_;
  absl::Mutex cache_mu_;
  std::map<std::string, v1::JobMetrics> cache_ ABSL_GUARDED_BY(cache_mu_);
  std::deque<std::string> cache_order_ ABSL_GUARDED_BY(cache_mu_);  // oldest first
};

}  // namespace candies::server
