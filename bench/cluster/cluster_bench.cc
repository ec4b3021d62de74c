// Times the clustering methods and the O(N^2) silhouette on Gaussian blobs the
// size of a Visium / Stereo-seq section, and prints ARI against the truth.
// Usage: cluster_bench [N ...]   (default 2000 4000 8000), d = 64, k = 7.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/cluster/cluster.h"
#include "core/metrics/metrics.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoll(argv[i]));
  if (sizes.empty()) sizes = {2000, 4000, 8000};
  const int64_t d = 64, k = 7;
  std::printf("%8s %10s %8s %8s %8s\n", "N", "method", "seconds", "ARI", "found");
  for (int64_t n : sizes) {
    std::mt19937_64 rng(n);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> x(n * d);
    std::vector<int32_t> truth(n);
    for (int64_t i = 0; i < n; ++i) {
      truth[i] = static_cast<int32_t>(i % k);
      for (int64_t t = 0; t < d; ++t) x[i * d + t] = normal(rng) + (t == truth[i] ? 4.f : 0.f);
    }
    torch::Tensor emb = torch::from_blob(x.data(), {n, d}, torch::kFloat).clone();
    for (auto m : {candies::ClusterMethod::kKmeans, candies::ClusterMethod::kMclust,
                   candies::ClusterMethod::kLeiden}) {
      candies::ClusterOptions options;
      options.method = m;
      options.n_clusters = k;
      auto start = std::chrono::steady_clock::now();
      auto c = candies::Cluster(emb, options);
      const double s = Seconds(start);
      if (!c.ok()) {
        std::printf("%8lld %10s failed: %s\n", static_cast<long long>(n),
                    candies::ClusterMethodName(m), c.status().ToString().c_str());
        continue;
      }
      std::printf("%8lld %10s %8.3f %8.4f %8lld\n", static_cast<long long>(n),
                  candies::ClusterMethodName(m), s,
                  candies::metrics::AdjustedRandIndex(truth, c->labels),
                  static_cast<long long>(c->n_clusters));
    }
    auto start = std::chrono::steady_clock::now();
    const double sil = candies::metrics::Silhouette(x, n, d, truth);
    std::printf("%8lld %10s %8.3f %8.4f (value)\n", static_cast<long long>(n), "silhouette",
                Seconds(start), sil);
    candies::metrics::SilhouetteOptions sample;
    sample.sample_size = 1000;
    start = std::chrono::steady_clock::now();
    const double sil_s = candies::metrics::Silhouette(x, n, d, truth, sample);
    std::printf("%8lld %10s %8.3f %8.4f (value)\n", static_cast<long long>(n), "sil@1000",
                Seconds(start), sil_s);
  }
  return 0;
}
