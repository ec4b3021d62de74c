// Clustering an embedding into spatial domains (ALGORITHM.md section 4).
//
// Owner: cluster area. Consumers: pipeline (domains, modality selection), server.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/util/job_options.h"

namespace candies {

// ClusterMethod, ParseClusterMethod, ClusterMethodName: core/util/job_options.h.

// k-means++ starts kept by default (docs/CLUSTERING.md: why 50, not sklearn's 10).
inline constexpr int64_t kKmeansDefaultNInit = 50;

struct ClusterOptions {
  ClusterMethod method = ClusterMethod::kMclust;
  int64_t n_clusters = 5;
  uint64_t seed = 0;
  // mclust: Gaussian mixture with one shared full covariance (mclust "EEE") on
  // the top `n_pcs` principal components of the embedding.
  int64_t n_pcs = 20;
  int64_t gmm_max_iter = 200;
  double gmm_tol = 1e-5;
  // leiden: kNN graph on the embedding, resolution bisected in
  // [resolution_min, resolution_max] until the cluster count matches.
  int64_t leiden_k = 15;
  double resolution_min = 0.0;
  double resolution_max = 3.0;
  int64_t leiden_max_steps = 30;
  // Leiden iterations per resolution: repeated until the partition is stable
  // (scanpy's n_iterations=-1), capped here so a pathological graph cannot hang.
  int64_t leiden_max_iterations = 50;
  // kmeans: k-means++ initialisation, best of n_init runs.
  int64_t kmeans_n_init = kKmeansDefaultNInit;
  int64_t kmeans_max_iter = 300;
};

struct Clustering {
  std::vector<int32_t> labels;  // 0..n_clusters-1 per row, ordered by first appearance
  int64_t n_clusters = 0;       // found (Leiden may miss the target; reported, not hidden)
  double resolution = 0;        // leiden only
  int64_t iterations = 0;       // Lloyd/EM iterations of the kept run; leiden: resolutions tried
};

// `embedding` is N x d float on any device. Same seed and device give the same labels.
// Errors: InvalidArgument if n_clusters < 1 or > N, N == 0, or the embedding is
// not a finite N x d floating tensor. mclust runs GaussianMixtureSharedCov on
// TopPrincipalComponents(embedding, n_pcs); the other methods use it as is.
absl::StatusOr<Clustering> Cluster(const torch::Tensor& embedding, const ClusterOptions& options);

// Scores of the top `n_pcs` principal components of the centred rows (N x
// min(n_pcs, d, N)), same dtype and device; signs fixed so that each component's
// largest loading is positive. Used by the mclust path.
absl::StatusOr<torch::Tensor> TopPrincipalComponents(const torch::Tensor& x, int64_t n_pcs);

// The individual algorithms, for tests and for callers that need one directly.
absl::StatusOr<Clustering> KMeans(const torch::Tensor& x, int64_t k, uint64_t seed,
                                  int64_t n_init = kKmeansDefaultNInit,
                                  int64_t max_iter = 300);
absl::StatusOr<Clustering> GaussianMixtureSharedCov(const torch::Tensor& x, int64_t k,
                                                    uint64_t seed, int64_t max_iter = 200,
                                                    double tol = 1e-5);
absl::StatusOr<Clustering> LeidenWithResolutionSearch(const torch::Tensor& x, int64_t k,
                                                      const ClusterOptions& options);

}  // namespace candies
