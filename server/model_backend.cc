#include "server/model_backend.h"

#include "core/util/status_macros.h"

namespace candies::server {

absl::StatusOr<std::string> ModelBackend::Run(const JobSpec& spec, const ProgressSink& progress,
                                              const CancelToken* cancel) {
  if (spec.model_id.empty() || !inner_->uses_resident_models()) return inner_->Run(spec, progress, cancel);
  JobSpec with_model = spec;
  // The job holds its own reference: an eviction meanwhile does not pull the
  // model out from under it.
  CANDIES_ASSIGN_OR_RETURN(with_model.model, models_->Acquire(spec.model_id));
  return inner_->Run(with_model, progress, cancel);
}

}  // namespace candies::server
