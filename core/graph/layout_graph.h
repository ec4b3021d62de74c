// The layout's own neighbourhood graph, built at most once per job and shared
// by every rule that reads it (the high-input choice, the denoiser guard, the
// joint smoothing: core/pipeline/integration_input.h).
//
// Owner: graph area. Consumers: pipeline, tests.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/graph/graph.h"
#include "core/graph/layout.h"

namespace candies {

struct LayoutGraph {
  LayoutNeighbours layout;  // lattice, spacing, the k the rule picked
  KnnResult knn;            // spatial kNN with layout.k neighbours
};

// Builds the graph on the first Get() and returns the same one (or the same
// error) after that; a job whose rules never read it never pays for it.
class LazyLayoutGraph {
 public:
  // `coords`: N x 2 row-major spot coordinates (copied).
  LazyLayoutGraph(std::vector<float> coords, int64_t n) : coords_(std::move(coords)), n_(n) {}

  absl::StatusOr<const LayoutGraph*> Get();
  int64_t n_obs() const { return n_; }
  int builds() const { return builds_; }  // 0 or 1

 private:
  std::vector<float> coords_;
  int64_t n_;
  std::optional<LayoutGraph> graph_;
  absl::Status error_;
  int builds_ = 0;
};

}  // namespace candies
