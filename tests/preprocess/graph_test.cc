#include "core/graph/graph.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/graph/layout_graph.h"

namespace candies {
namespace {

TEST(Graph, SpatialKnnMatchesBruteForce) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(0, 100);
  const int64_t n = 300, k = 6;
  std::vector<float> xy(n * 2);
  for (float& v : xy) v = u(rng);
  auto knn = SpatialKnn(xy, n, 2, k);
  ASSERT_TRUE(knn.ok()) << knn.status();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<float, int64_t>> all;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const float dx = xy[2 * i] - xy[2 * j], dy = xy[2 * i + 1] - xy[2 * j + 1];
      all.emplace_back(dx * dx + dy * dy, j);
    }
    std::sort(all.begin(), all.end());
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_EQ(knn->neighbors[i * k + j], all[j].second) << "spot " << i;
      EXPECT_NEAR(knn->distances[i * k + j], std::sqrt(all[j].first), 1e-3);
    }
  }
}

TEST(Graph, SpatialKnnOnAGridBreaksTiesByIndexAndNeverReturnsSelf) {
  std::vector<float> xy;
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 5; ++c) xy.insert(xy.end(), {float(c), float(r)});
  auto knn = SpatialKnn(xy, 25, 2, 4);
  ASSERT_TRUE(knn.ok());
  // Interior spot 12 (2,2): its four unit-distance neighbours, in index order.
  EXPECT_EQ(std::vector<int64_t>(knn->neighbors.begin() + 48, knn->neighbors.begin() + 52),
            (std::vector<int64_t>{7, 11, 13, 17}));
  for (int64_t i = 0; i < 25; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_NE(knn->neighbors[i * 4 + j], i);
}

TEST(Graph, SpatialKnnRejectsBadInput) {
  std::vector<float> xy = {0, 0, 1, 1, 2, 2};
  EXPECT_FALSE(SpatialKnn(xy, 3, 2, 3).ok());  // k >= N
  EXPECT_FALSE(SpatialKnn(xy, 3, 2, 0).ok());
  EXPECT_FALSE(SpatialKnn({0, 0, 1}, 2, 2, 1).ok());  // wrong length
  xy[2] = std::nanf("");
  auto nan = SpatialKnn(xy, 3, 2, 1);
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("spatial"), std::string::npos);
}

TEST(Graph, FeatureKnnIsCosineAndBlockedEqualsBruteForce) {
  torch::manual_seed(1);
  const int64_t n = 1500, k = 5;  // more than one 1024-row block
  torch::Tensor x = torch::randn({n, 8});
  auto knn = FeatureKnn(x, k);
  ASSERT_TRUE(knn.ok()) << knn.status();
  torch::Tensor xn = x / x.norm(2, 1, true);
  torch::Tensor sim = xn.mm(xn.t());
  sim.fill_diagonal_(-2);
  auto [vals, idx] = sim.topk(k, 1);
  for (int64_t i : {int64_t{0}, int64_t{1023}, int64_t{1024}, n - 1}) {
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_EQ(knn->neighbors[i * k + j], idx[i][j].item<int64_t>());
      EXPECT_NEAR(knn->distances[i * k + j], 1 - vals[i][j].item<float>(), 1e-5);
    }
  }
  // Scaling a row does not change cosine neighbours.
  torch::Tensor y = x.clone();
  y[0] *= 10;
  EXPECT_EQ(FeatureKnn(y, k)->neighbors, knn->neighbors);
}

TEST(Graph, NormalizedAdjacencyIsSymmetricWithSelfLoops) {
  KnnResult knn;
  knn.k = 1;
  knn.neighbors = {1, 2, 1};  // 0->1, 1->2, 2->1: edges {0-1, 1-2}
  torch::Tensor a = NormalizedAdjacency(knn, 3, torch::kCPU).to_dense();
  EXPECT_TRUE(torch::allclose(a, a.t()));
  // Degrees with self-loops: 2, 3, 2.
  EXPECT_NEAR(a[0][0].item<float>(), 1.0 / 2, 1e-6);
  EXPECT_NEAR(a[1][1].item<float>(), 1.0 / 3, 1e-6);
  EXPECT_NEAR(a[0][1].item<float>(), 1.0 / std::sqrt(6.0), 1e-6);
  EXPECT_EQ(a[0][2].item<float>(), 0.0f);
  torch::Tensor w = RowStandardizedWeights(knn, 3).to_dense();
  EXPECT_TRUE(torch::allclose(w.sum(1), torch::ones({3})));
  EXPECT_EQ(w[0][0].item<float>(), 0.0f);
}

// Multivariate Moran's I: ~0 for per-spot noise, ~1 for features that change
// only between two halves of a grid, and the signal's share of the variance
// for signal plus noise.
TEST(Graph, MultivariateMoransISeparatesNoiseFromSpatialSignal) {
  std::vector<float> xy;
  const int side = 30;
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) xy.insert(xy.end(), {float(c), float(r)});
  const int64_t n = side * side;
  auto knn = SpatialKnn(xy, n, 2, 4);
  ASSERT_TRUE(knn.ok()) << knn.status();
  torch::manual_seed(3);
  torch::Tensor noise = torch::randn({n, 5});
  torch::Tensor halves = torch::zeros({n, 5});
  for (int64_t i = 0; i < n; ++i)
    if (xy[2 * i] >= side / 2) halves[i] = torch::ones({5});
  const double i_noise = MultivariateMoransI(noise, *knn);
  const double i_signal = MultivariateMoransI(halves, *knn);
  // Signal variance 0.25 per column, noise variance 0.25: half of it is shared.
  const double i_mixed = MultivariateMoransI(halves + 0.5 * noise, *knn);
  EXPECT_LT(std::abs(i_noise), 0.05);
  EXPECT_GT(i_signal, 0.95);
  EXPECT_NEAR(i_mixed, 0.5 * i_signal, 0.06);
  EXPECT_EQ(MultivariateMoransI(torch::ones({n, 3}), *knn), 0.0) << "constant features: no variance";
}


// The lazy layout graph is DeriveLayoutNeighbours' k and a spatial kNN of that
// k, built on the first Get() only.
TEST(Graph, LazyLayoutGraphBuildsTheLayoutsOwnKnnOnce) {
  std::vector<float> xy;
  for (int r = 0; r < 10; ++r)
    for (int c = 0; c < 10; ++c) xy.insert(xy.end(), {float(c), float(r)});
  LazyLayoutGraph g(xy, 100);
  EXPECT_EQ(g.builds(), 0);
  auto first = g.Get();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE((*first)->layout.lattice);
  EXPECT_EQ((*first)->layout.k, 4) << "a square grid's own neighbourhood";
  auto direct = SpatialKnn(xy, 100, 2, 4);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*first)->knn.neighbors, direct->neighbors);
  auto again = g.Get();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first) << "the same graph, not a rebuild";
  EXPECT_EQ(g.builds(), 1);
}

}  // namespace
}  // namespace candies
