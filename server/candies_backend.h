// The JobBackend that runs CANDIES (core/pipeline) on two stored datasets, and
// loads the trained models that its jobs save (core/pipeline/trained_model.h).
#pragma once

#include "server/backend.h"

namespace candies::server {

class CandiesBackend : public JobBackend {
 public:
  // `device` is where loaded models live ("auto" | "cpu" | "cuda[:N]").
  explicit CandiesBackend(std::string device = "auto") : device_(std::move(device)) {}
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override;
  absl::StatusOr<std::shared_ptr<const ResidentModel>> LoadModel(const std::string& dir) override;

 private:
  std::string device_;
};

}  // namespace candies::server
