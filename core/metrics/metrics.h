// Clustering quality metrics with scikit-learn's definitions (and esda's for
// Moran's I). Plain C++: no LibTorch, so callers outside the pipeline can use them.
//
// Owner: metrics area. Reference values: tests/metrics/make_reference.py.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace candies::metrics {

// Supervised: label vectors of equal length (any integer codes). Unequal lengths
// give NaN. Edge cases (empty input, one cluster) follow sklearn 1.2 exactly.
double AdjustedRandIndex(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred);
double MutualInformation(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred);
double NormalizedMutualInformation(const std::vector<int32_t>& truth,
                                   const std::vector<int32_t>& pred);  // arithmetic mean
double AdjustedMutualInformation(const std::vector<int32_t>& truth,
                                 const std::vector<int32_t>& pred);  // arithmetic mean
double Homogeneity(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred);
double Completeness(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred);
double VMeasure(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred);
double FowlkesMallows(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred);

// Unsupervised, on an N x d row-major embedding. They need 2 <= #clusters <= N-1
// (sklearn raises otherwise); outside that, or on a size mismatch, they give NaN.
double Silhouette(const std::vector<float>& x, int64_t n, int64_t d,
                  const std::vector<int32_t>& labels);  // Euclidean, mean over samples, exact

// The exact silhouette costs O(N^2 d) (parallel over rows). For large N, score a
// seeded random subset of rows (each still against all N rows), like sklearn's
// silhouette_score(sample_size=...) but without subsetting the reference set.
struct SilhouetteOptions {
  int64_t sample_size = 0;  // rows scored; 0 or >= N means all rows (exact)
  uint64_t seed = 0;        // which rows, when sampling
};
double Silhouette(const std::vector<float>& x, int64_t n, int64_t d,
                  const std::vector<int32_t>& labels, const SilhouetteOptions& options);
double DaviesBouldin(const std::vector<float>& x, int64_t n, int64_t d,
                     const std::vector<int32_t>& labels);
double CalinskiHarabasz(const std::vector<float>& x, int64_t n, int64_t d,
                        const std::vector<int32_t>& labels);
// Moran's I of a numeric variable `y` with row-standardised weights given as a
// neighbour list (neighbors[i * k + j]); labels are scored one-hot (mean over
// clusters) by MoransIOfLabels. Neighbour indices < 0 or >= N are padding and
// skipped; a row with none is an island (zero row, as esda). Constant `y`: NaN.
// MoransIOfLabels = mean over clusters of MoransI(one-hot indicator of the
// cluster); clusters whose indicator is constant are left out (NaN if all are).
double MoransI(const std::vector<double>& y, const std::vector<int64_t>& neighbors, int64_t k);
double MoransIOfLabels(const std::vector<int32_t>& labels, const std::vector<int64_t>& neighbors,
                       int64_t k);

// Every supervised metric at once, by name ("ARI", "NMI", "AMI", "MI",
// "homogeneity", "completeness", "v_measure", "FMI"), in that order.
std::vector<std::pair<std::string, double>> SupervisedReport(const std::vector<int32_t>& truth,
                                                             const std::vector<int32_t>& pred);

// Maps arbitrary string labels to dense codes in order of first appearance.
std::vector<int32_t> EncodeLabels(const std::vector<std::string>& labels);

}  // namespace candies::metrics
