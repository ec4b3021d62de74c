#include "core/graph/graph.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include <ATen/Parallel.h>
#include <nanoflann.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace candies {
namespace {

// nanoflann's dataset adaptor over a row-major N x dim float array.
struct PointCloud {
  const float* data;
  int64_t n;
  int64_t dim;
  size_t kdtree_get_point_count() const { return static_cast<size_t>(n); }
  float kdtree_get_pt(size_t idx, size_t d) const { return data[idx * dim + d]; }
  template <class BBox>
  bool kdtree_get_bbox(BBox&) const {
    return false;
  }
};

using KdTree = nanoflann::KDTreeSingleIndexAdaptor<
    nanoflann::L2_Simple_Adaptor<float, PointCloud>, PointCloud, -1, uint32_t>;

// Rows of a feature matrix scaled to unit length (zero rows stay zero).
torch::Tensor UnitRows(const torch::Tensor& x) {
  return x / x.norm(2, 1, true).clamp_min(1e-12);
}

}  // namespace

absl::StatusOr<KnnResult> SpatialKnn(const std::vector<float>& coords, int64_t n, int64_t dim,
                                     int64_t k) {
  if (n < 2) return absl::InvalidArgumentError(absl::StrCat("spatial kNN: needs >= 2 spots, got ", n));
  if (dim < 1 || static_cast<int64_t>(coords.size()) != n * dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("obsm['spatial']: expected ", n, " x ", dim, " coordinates, got ",
                     coords.size(), " values"));
  }
  if (k < 1 || k >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("spatial kNN: k must be in [1, ", n - 1, "], got ", k));
  }
  for (float v : coords) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError("obsm['spatial']: coordinates contain NaN or Inf");
    }
  }
  PointCloud cloud{coords.data(), n, dim};
  KdTree tree(static_cast<int32_t>(dim), cloud, nanoflann::KDTreeSingleIndexAdaptorParams(10));
  tree.buildIndex();
  KnnResult out;
  out.k = k;
  out.neighbors.resize(n * k);
  out.distances.resize(n * k);
  // One extra neighbour so that the point itself can be dropped; a few more so
  // that ties at the k-th distance are broken by index, not by tree order.
  const int64_t want = std::min<int64_t>(n, k + 1 + 8);
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    std::vector<uint32_t> idx(want);
    std::vector<float> d2(want);
    std::vector<std::pair<float, int64_t>> cand;
    for (int64_t i = begin; i < end; ++i) {
      const size_t found = tree.knnSearch(coords.data() + i * dim, want, idx.data(), d2.data());
      cand.clear();
      for (size_t j = 0; j < found; ++j) {
        if (static_cast<int64_t>(idx[j]) != i) cand.emplace_back(d2[j], idx[j]);
      }
      std::sort(cand.begin(), cand.end());
      for (int64_t j = 0; j < k; ++j) {
        out.neighbors[i * k + j] = cand[j].second;
        out.distances[i * k + j] = std::sqrt(cand[j].first);
      }
    }
  });
  return out;
}

absl::StatusOr<KnnResult> FeatureKnn(const torch::Tensor& features, int64_t k) {
  if (!features.defined() || features.dim() != 2) {
    return absl::InvalidArgumentError("feature kNN: features must be an N x d matrix");
  }
  const int64_t n = features.size(0);
  if (k < 1 || k >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature kNN: k must be in [1, ", n - 1, "], got ", k));
  }
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor x = UnitRows(features.to(torch::kFloat32));
    if (!torch::isfinite(x).all().item<bool>()) {
      return absl::InvalidArgumentError("feature kNN: features contain NaN or Inf");
    }
    KnnResult out;
    out.k = k;
    out.neighbors.resize(n * k);
    out.distances.resize(n * k);
    // Blocks of rows keep memory at O(block * N) instead of O(N^2).
    constexpr int64_t kBlock = 1024;
    for (int64_t start = 0; start < n; start += kBlock) {
      const int64_t stop = std::min(n, start + kBlock);
      torch::Tensor sim = x.slice(0, start, stop).mm(x.t());
      torch::Tensor rows = torch::arange(start, stop, torch::TensorOptions().device(sim.device()));
      sim.index_put_({rows - start, rows}, -std::numeric_limits<float>::infinity());
      auto [vals, idx] = sim.topk(k, 1, /*largest=*/true, /*sorted=*/true);
      torch::Tensor v = vals.to(torch::kCPU).contiguous();
      torch::Tensor id = idx.to(torch::kCPU, torch::kInt64).contiguous();
      const float* pv = v.data_ptr<float>();
      const int64_t* pi = id.data_ptr<int64_t>();
      for (int64_t r = 0; r < (stop - start) * k; ++r) {
        out.neighbors[start * k + r] = pi[r];
        out.distances[start * k + r] = 1.0f - pv[r];
      }
    }
    return out;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("feature kNN failed: ", e.what()));
  }
}

torch::Tensor NormalizedAdjacency(const KnnResult& knn, int64_t n, const torch::Device& device) {
  // Edge list of A + A^T + I, deduplicated.
  std::vector<std::pair<int64_t, int64_t>> edges;
  edges.reserve(n * (2 * knn.k + 1));
  for (int64_t i = 0; i < n; ++i) {
    edges.emplace_back(i, i);
    for (int64_t j = 0; j < knn.k; ++j) {
      const int64_t nb = knn.neighbors[i * knn.k + j];
      edges.emplace_back(i, nb);
      edges.emplace_back(nb, i);
    }
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  std::vector<double> degree(n, 0.0);
  for (const auto& [r, c] : edges) degree[r] += 1.0;
  const int64_t m = static_cast<int64_t>(edges.size());
  torch::Tensor indices = torch::empty({2, m}, torch::kInt64);
  torch::Tensor values = torch::empty({m}, torch::kFloat32);
  int64_t* pi = indices.data_ptr<int64_t>();
  float* pv = values.data_ptr<float>();
  for (int64_t e = 0; e < m; ++e) {
    const auto [r, c] = edges[e];
    pi[e] = r;
    pi[m + e] = c;
    pv[e] = static_cast<float>(1.0 / std::sqrt(degree[r] * degree[c]));
  }
  return torch::sparse_coo_tensor(indices, values, {n, n}).coalesce().to(device);
}

torch::Tensor RowStandardizedWeights(const KnnResult& knn, int64_t n) {
  const int64_t m = n * knn.k;
  torch::Tensor indices = torch::empty({2, m}, torch::kInt64);
  int64_t* pi = indices.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < knn.k; ++j) {
      pi[i * knn.k + j] = i;
      pi[m + i * knn.k + j] = knn.neighbors[i * knn.k + j];
    }
  }
  torch::Tensor values = torch::full({m}, 1.0f / static_cast<float>(knn.k), torch::kFloat32);
  return torch::sparse_coo_tensor(indices, values, {n, n}).coalesce();
}

double MultivariateMoransI(const torch::Tensor& x, const KnnResult& knn) {
  const int64_t n = x.size(0);
  if (n < 2 || knn.k < 1) return 0.0;
  torch::Tensor xc = x.to(torch::kCPU, torch::kFloat64);
  xc = xc - xc.mean(0, /*keepdim=*/true);
  const double denom = xc.pow(2).sum().item<double>();
  if (!(denom > 0)) return 0.0;
  torch::Tensor w = RowStandardizedWeights(knn, n).to(torch::kFloat64);
  const double num = (xc * torch::mm(w, xc)).sum().item<double>();
  return num / denom;
}

}  // namespace candies
