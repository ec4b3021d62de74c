// ARI of one clustering of an embedding against the simulator's domains, for
// the quality benches (bench_quality, denoise_lab). NaN when clustering fails.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/cluster/cluster.h"
#include "core/metrics/metrics.h"

namespace candies {

inline double ClusterAri(const torch::Tensor& x, const std::vector<int32_t>& truth,
                         ClusterMethod method, uint64_t seed, int64_t n_clusters = 5) {
  ClusterOptions o;
  o.method = method;
  o.n_clusters = n_clusters;
  o.seed = seed;
  auto c = Cluster(x, o);
  if (!c.ok()) {
    std::fprintf(stderr, "cluster failed: %s\n", std::string(c.status().message()).c_str());
    return NAN;
  }
  return metrics::AdjustedRandIndex(truth, c->labels);
}

}  // namespace candies
