// A JobBackend that resolves a job's model_id through the ModelRegistry, then
// runs the inner backend with the model attached.
#pragma once

#include <string>

#include "server/backend.h"
#include "server/model_registry.h"

namespace candies::server {

class ModelBackend : public JobBackend {
 public:
  // Both must outlive this backend.
  ModelBackend(JobBackend* inner, ModelRegistry* models) : inner_(inner), models_(models) {}
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override;

 private:
  JobBackend* inner_;
  ModelRegistry* models_;
};

}  // namespace candies::server
