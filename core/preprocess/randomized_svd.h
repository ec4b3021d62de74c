// Randomized truncated SVD (Halko, Martinsson & Tropp 2011) over a matrix given
// only by its products, so sparse input is never densified. Internal to
// core/preprocess.
#pragma once

#include <cstdint>
#include <functional>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/io/anndata.h"

namespace candies {

// A is n_rows x n_cols; apply(M) = A M (M: n_cols x l), apply_t(M) = A^T M (M: n_rows x l).
// Tensors are CPU float64.
struct LinearOperator {
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  std::function<torch::Tensor(const torch::Tensor&)> apply;
  std::function<torch::Tensor(const torch::Tensor&)> apply_t;
};

LinearOperator DenseOperator(const torch::Tensor& a);
// CSR matrix; with `center`, the operator is (A - 1 mu^T) with mu the column
// means, applied implicitly.
LinearOperator SparseOperator(Matrix csr, bool center);

// The n_rows x n_comps scores U S of the top n_comps singular triplets, float32,
// signs fixed so that the largest-magnitude entry of each column of U is
// positive (sklearn's svd_flip). Deterministic for a seed.
absl::StatusOr<torch::Tensor> RandomizedSvdScores(const LinearOperator& op, int64_t n_comps,
                                                  uint64_t seed, int64_t oversamples = 10,
                                                  int64_t power_iterations = 4);

}  // namespace candies
