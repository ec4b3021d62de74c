// The naive baseline of the quality benches (issue 13): PCA + k-means on
// spatially smoothed (adj X), concatenated, z-scored PCs of both modalities.
#pragma once

#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "bench/quality/cluster_ari.h"
#include "core/preprocess/preprocess.h"

namespace candies {

inline double NaiveBaseline(const PreprocessedModality& a, const PreprocessedModality& b,
                            const torch::Tensor& adj, const std::vector<int32_t>& truth,
                            uint64_t seed, int64_t n_clusters = 5) {
  auto x = torch::cat({pp::Scale(a.features), pp::Scale(b.features)}, 1);
  auto smooth = torch::mm(adj, x);
  auto pcs = pp::Pca(smooth, 20, seed);
  if (!pcs.ok()) return NAN;
  return ClusterAri(*pcs, truth, ClusterMethod::kKmeans, seed, n_clusters);
}

}  // namespace candies
