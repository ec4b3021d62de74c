// Neighbour graphs as sparse, normalised adjacency tensors (ALGORITHM.md section 1).
//
// Owner: graph area. Consumers: models, pipeline, metrics (Moran's I weights).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace candies {

// A directed kNN list: neighbours[i] are the k nearest other points of i.
struct KnnResult {
  int64_t k = 0;
  std::vector<int64_t> neighbors;  // N * k, row-major
  std::vector<float> distances;    // N * k (Euclidean or cosine distance)
};

// Exact kNN on 2-D/3-D coordinates with a KD-tree (nanoflann), O(N log N).
// `coords` is N x D row-major. Duplicate coordinates are allowed.
absl::StatusOr<KnnResult> SpatialKnn(const std::vector<float>& coords, int64_t n, int64_t dim,
                                     int64_t k);
// kNN on feature rows by cosine distance (N x d tensor, any device); computed in
// blocks so memory is O(N * block), not O(N^2).
absl::StatusOr<KnnResult> FeatureKnn(const torch::Tensor& features, int64_t k);

// Symmetrised binary adjacency (A + A^T > 0) with self-loops, normalised
// D^-1/2 (A + I) D^-1/2, as a coalesced sparse COO float32 tensor on `device`.
torch::Tensor NormalizedAdjacency(const KnnResult& knn, int64_t n, const torch::Device& device);

// Row-standardised spatial weights (no self-loops), for Moran's I.
torch::Tensor RowStandardizedWeights(const KnnResult& knn, int64_t n);

// Multivariate Moran's I of the rows of `x` (N x d, any device) over the kNN
// graph: sum_i <x_i - m, mean_{j in N(i)} x_j - m> / sum_i |x_i - m|^2, i.e.
// the share of the features' variance that neighbours share. About 0 for
// per-spot noise, near 1 for features that vary only between spatial domains;
// for signal plus independent noise it estimates the signal's share of the
// variance. Used to judge whether a modality's features are clean enough to
// enter the integration as they are (docs/SCIENCE.md, "Tissue families").
double MultivariateMoransI(const torch::Tensor& x, const KnnResult& knn);

}  // namespace candies
