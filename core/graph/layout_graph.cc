#include "core/graph/layout_graph.h"

namespace candies {

absl::StatusOr<const LayoutGraph*> LazyLayoutGraph::Get() {
  if (graph_) return &*graph_;
  if (!error_.ok()) return error_;
  ++builds_;
  auto layout = DeriveLayoutNeighbours(coords_, n_);
  if (!layout.ok()) {
    error_ = layout.status();
    return error_;
  }
  auto knn = SpatialKnn(coords_, n_, 2, layout->k);
  if (!knn.ok()) {
    error_ = knn.status();
    return error_;
  }
  graph_ = LayoutGraph{*layout, std::move(*knn)};
  return &*graph_;
}

}  // namespace candies
