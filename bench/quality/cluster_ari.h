// Scoring helpers for the quality benches (bench_quality, denoise_lab,
// integration_lab): ARI of one clustering of an embedding against the
// simulator's domains (NaN when clustering fails), and majority domains.
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
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

// Each cluster's majority true domain (ties: the lowest domain id): a spot
// whose cluster's majority is not its own domain counts as an error.
inline std::map<int32_t, int32_t> MajorityDomains(const std::vector<int32_t>& truth,
                                                  const std::vector<int32_t>& pred) {
  std::map<int32_t, std::map<int32_t, int>> votes;
  for (size_t i = 0; i < truth.size(); ++i) ++votes[pred[i]][truth[i]];
  std::map<int32_t, int32_t> majority;
  for (const auto& [c, v] : votes) {
    int best = -1;
    for (const auto& [t, count] : v)
      if (count > best) best = count, majority[c] = t;
  }
  return majority;
}

}  // namespace candies
