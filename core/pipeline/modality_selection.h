// Which modality is the low-quality one (ALGORITHM.md 2.2).
//
// Owner: pipeline area.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/cluster/cluster.h"

namespace candies {

struct ModalityScores {
  std::vector<int32_t> labels1, labels2;  // clusters of Z1, Z2
  double score1 = 0, score2 = 0;          // higher = better quality
  bool supervised = false;                // scores are ARIs against the truth
  int low = 0;                            // 1 or 2
};

// Fixed normalisation ranges of the unsupervised score (the authors' choice):
// each metric is mapped to [0, 1] with these bounds (clamped), DB inverted, and
// the four are averaged.
struct QualityScoreRanges {
  double silhouette_min = -1, silhouette_max = 1;
  double db_min = 0, db_max = 10;
  double ch_min = 0, ch_max = 200;
  double moran_min = -1, moran_max = 1;
};

// Clusters z1 and z2 into `cluster.n_clusters` with Leiden (`selection_method`),
// falling back to `cluster.method` when Leiden misses the count; with `truth`
// (non-empty) the lower ARI is the low-quality modality, otherwise the lower
// averaged unsupervised score. `spatial_neighbors` is a spatial kNN list (k per
// row) for Moran's I.
absl::StatusOr<ModalityScores> SelectLowQuality(const torch::Tensor& z1, const torch::Tensor& z2,
                                                const ClusterOptions& cluster,
                                                ClusterMethod selection_method,
                                                const std::vector<int32_t>& truth,
                                                const std::vector<int64_t>& spatial_neighbors,
                                                int64_t spatial_k,
                                                const QualityScoreRanges& ranges = {});

}  // namespace candies
