// What a worker runs for one job. The scheduler knows nothing about CANDIES:
// it hands a JobSpec to a JobBackend (candies_backend.cc runs the pipeline;
// tests inject small backends that really compute).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/util/progress.h"

namespace candies::server {

struct JobSpec {
  std::string id;
  std::string owner = "default";
  std::string mod1_path, mod2_path;  // .h5ad files of the two datasets
  int mod1_kind = 0, mod2_kind = 0;  // v1::ModalityKind values
  std::string kind = "full";         // full | integrate | denoise | cluster
  int64_t n_clusters = 0;
  std::string low_quality = "auto";
  std::string preset = "fast";
  uint64_t seed = 0;
  std::string labels_key;
  std::string device = "auto";
  std::string result_path;  // where the backend writes the result .h5ad
};

class JobBackend {
 public:
  virtual ~JobBackend() = default;
  // Runs the job to completion; returns the result file's path. Must check
  // `cancel` regularly and return absl::CancelledError when it fires.
  virtual absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                          const CancelToken* cancel) = 0;
};

}  // namespace candies::server
