#include "core/graph/layout.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/graph/graph.h"

namespace candies {

namespace {
double Median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}
}  // namespace

absl::StatusOr<LayoutNeighbours> DeriveLayoutNeighbours(const std::vector<float>& coords,
                                                        int64_t n, double radius,
                                                        int64_t irregular_k) {
  if (n < 3) return absl::InvalidArgumentError(absl::StrCat("n_obs: ", n, " spots; need >= 3"));
  if (radius < 1 || irregular_k < 1)
    return absl::InvalidArgumentError("radius must be >= 1 and irregular_k >= 1");
  // 12 neighbours hold the second ring of a hexagonal lattice and of a grid.
  const int64_t probe = std::min<int64_t>(12, n - 1);
  auto knn = SpatialKnn(coords, n, 2, probe);
  if (!knn.ok()) return knn.status();
  std::vector<double> nearest(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) nearest[i] = knn->distances[i * probe];
  LayoutNeighbours out;
  out.spacing = Median(nearest);
  int64_t close = 0;
  for (double d : nearest) close += std::abs(d - out.spacing) <= 0.05 * out.spacing;
  out.lattice = out.spacing > 0 && close >= kLatticeShare * n;
  if (!out.lattice) {
    out.k = std::min<int64_t>(irregular_k, n - 1);
    return out;
  }
  std::vector<double> within(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = 0;
    for (int64_t j = 0; j < probe; ++j) c += knn->distances[i * probe + j] <= radius * out.spacing;
    within[i] = static_cast<double>(c);
  }
  out.k = std::max<int64_t>(1, static_cast<int64_t>(Median(within)));
  return out;
}

}  // namespace candies
