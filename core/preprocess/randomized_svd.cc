#include "core/preprocess/randomized_svd.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace candies {
namespace {

// CSR (rows x cols) times dense (cols x l), float64 accumulation, rows in parallel.
torch::Tensor CsrTimesDense(const Matrix& a, const torch::Tensor& m) {
  const int64_t l = m.size(1);
  torch::Tensor out = torch::zeros({a.n_rows, l}, torch::kFloat64);
  const double* pm = m.data_ptr<double>();
  double* po = out.data_ptr<double>();
  at::parallel_for(0, a.n_rows, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double* orow = po + r * l;
      for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
        const double v = a.values[p];
        const double* mrow = pm + static_cast<int64_t>(a.indices[p]) * l;
        for (int64_t j = 0; j < l; ++j) orow[j] += v * mrow[j];
      }
    }
  });
  return out;
}

// The CSR of A^T: A's CSR arrays read as a CSC of the transposed shape.
Matrix Transposed(const Matrix& csr) {
  Matrix t;
  t.format = Matrix::Format::kCsc;
  t.n_rows = csr.n_cols;
  t.n_cols = csr.n_rows;
  t.indptr = csr.indptr;
  t.indices = csr.indices;
  t.values = csr.values;
  return ToCsr(t);
}

torch::Tensor Orthonormal(const torch::Tensor& y) {
  return std::get<0>(torch::linalg_qr(y, "reduced"));
}

}  // namespace

LinearOperator DenseOperator(const torch::Tensor& a) {
  torch::Tensor a64 = a.to(torch::kCPU, torch::kFloat64).contiguous();
  LinearOperator op;
  op.n_rows = a64.size(0);
  op.n_cols = a64.size(1);
  op.apply = [a64](const torch::Tensor& m) { return a64.mm(m); };
  op.apply_t = [a64](const torch::Tensor& m) { return a64.t().mm(m); };
  return op;
}

LinearOperator SparseOperator(Matrix csr, bool center) {
  auto a = std::make_shared<Matrix>(std::move(csr));
  auto at = std::make_shared<Matrix>(Transposed(*a));
  torch::Tensor mu = torch::zeros({1, a->n_cols}, torch::kFloat64);
  if (center) {
    double* pmu = mu.data_ptr<double>();
    for (size_t p = 0; p < a->values.size(); ++p) pmu[a->indices[p]] += a->values[p];
    mu /= static_cast<double>(a->n_rows);
  }
  LinearOperator op;
  op.n_rows = a->n_rows;
  op.n_cols = a->n_cols;
  // (A - 1 mu^T) M = A M - 1 (mu^T M);  (A - 1 mu^T)^T M = A^T M - mu (1^T M).
  op.apply = [a, mu, center](const torch::Tensor& m) {
    torch::Tensor out = CsrTimesDense(*a, m.contiguous());
    return center ? out - mu.mm(m) : out;
  };
  op.apply_t = [at, mu, center](const torch::Tensor& m) {
    torch::Tensor out = CsrTimesDense(*at, m.contiguous());
    return center ? out - mu.t().mm(m.sum(0, true)) : out;
  };
  return op;
}

absl::StatusOr<torch::Tensor> RandomizedSvdScores(const LinearOperator& op, int64_t n_comps,
                                                  uint64_t seed, int64_t oversamples,
                                                  int64_t power_iterations) {
  const int64_t rank_max = std::min(op.n_rows, op.n_cols);
  if (n_comps < 1 || n_comps > rank_max) {
    return absl::InvalidArgumentError(absl::StrCat("pca: n_comps must be in [1, ", rank_max,
                                                   "], got ", n_comps));
  }
  const int64_t l = std::min(rank_max, n_comps + oversamples);
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  torch::Tensor omega = at::normal(0.0, 1.0, {op.n_cols, l}, gen, torch::kFloat64);
  torch::Tensor q = Orthonormal(op.apply(omega));
  for (int64_t i = 0; i < power_iterations; ++i) {
    q = Orthonormal(op.apply(Orthonormal(op.apply_t(q))));
  }
  torch::Tensor b = op.apply_t(q).t();  // l x n_cols = Q^T A
  auto [ub, s, vt] = torch::linalg_svd(b, /*full_matrices=*/false);
  torch::Tensor u = q.mm(ub).slice(1, 0, n_comps);
  s = s.slice(0, 0, n_comps);
  // svd_flip: the largest-magnitude entry of each column of U is positive.
  torch::Tensor idx = u.abs().argmax(0);
  torch::Tensor signs = torch::sign(u.gather(0, idx.unsqueeze(0)));
  signs = torch::where(signs == 0, torch::ones_like(signs), signs);
  return (u * signs * s.unsqueeze(0)).to(torch::kFloat32).contiguous();
}

}  // namespace candies
