// The JobBackend that runs CANDIES (core/pipeline) on two stored datasets.
#pragma once

#include "server/backend.h"

namespace candies::server {

class CandiesBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override;
};

}  // namespace candies::server
