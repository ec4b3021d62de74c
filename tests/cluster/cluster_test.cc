#include "core/cluster/cluster.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/metrics/metrics.h"

namespace candies {
namespace {

struct Data {
  torch::Tensor x;
  std::vector<int32_t> truth;
};

// Isotropic Gaussian blobs: `k` centres on the axes at distance `spread`.
Data Blobs(int64_t k, int64_t per, int64_t d, double spread, double sd, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, sd);
  std::vector<float> v;
  Data data;
  for (int64_t i = 0; i < k * per; ++i) {
    const int64_t c = i % k;  // interleaved so label order is not the row order
    for (int64_t t = 0; t < d; ++t) {
      v.push_back(static_cast<float>((t == c % d ? spread * (1 + c / d) : 0) + normal(rng)));
    }
    data.truth.push_back(static_cast<int32_t>(c));
  }
  data.x = torch::from_blob(v.data(), {k * per, d}, torch::kFloat).clone();
  return data;
}

// Two clusters sharing one very elongated covariance: long along x, split in y.
Data Elongated(int64_t per, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> along(0.0, 10.0), across(0.0, 0.5);
  std::vector<float> v;
  Data data;
  for (int64_t i = 0; i < 2 * per; ++i) {
    const int32_t c = static_cast<int32_t>(i % 2);
    v.push_back(static_cast<float>(along(rng)));
    v.push_back(static_cast<float>((c == 0 ? -2.0 : 2.0) + across(rng)));
    data.truth.push_back(c);
  }
  data.x = torch::from_blob(v.data(), {2 * per, 2}, torch::kFloat).clone();
  return data;
}

void ExpectFirstAppearanceOrder(const Clustering& c) {
  int32_t next = 0;
  for (int32_t l : c.labels) {
    ASSERT_LE(l, next);
    if (l == next) ++next;
  }
  EXPECT_EQ(next, c.n_clusters);
}

TEST(ClusterMethod, ParseAndName) {
  for (auto m : {ClusterMethod::kMclust, ClusterMethod::kLeiden, ClusterMethod::kKmeans}) {
    auto parsed = ParseClusterMethod(ClusterMethodName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_EQ(*ParseClusterMethod("GMM"), ClusterMethod::kMclust);
  auto bad = ParseClusterMethod("louvain");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("louvain"), std::string::npos);
}

TEST(Cluster, AllMethodsRecoverSeparatedBlobs) {
  Data data = Blobs(4, 50, 8, 12.0, 1.0, 7);
  for (auto m : {ClusterMethod::kKmeans, ClusterMethod::kMclust, ClusterMethod::kLeiden}) {
    ClusterOptions options;
    options.method = m;
    options.n_clusters = 4;
    options.n_pcs = 5;
    auto c = Cluster(data.x, options);
    ASSERT_TRUE(c.ok()) << ClusterMethodName(m) << ": " << c.status();
    EXPECT_EQ(c->n_clusters, 4) << ClusterMethodName(m);
    ASSERT_EQ(c->labels.size(), data.truth.size());
    EXPECT_DOUBLE_EQ(metrics::AdjustedRandIndex(data.truth, c->labels), 1.0)
        << ClusterMethodName(m);
    ExpectFirstAppearanceOrder(*c);
    if (m == ClusterMethod::kLeiden) {
      EXPECT_GT(c->resolution, options.resolution_min);
      EXPECT_LT(c->resolution, options.resolution_max);
    }
  }
}

TEST(Cluster, SharedCovarianceGmmSeparatesElongatedClustersKmeansCannot) {
  Data data = Elongated(150, 11);
  auto km = KMeans(data.x, 2, 0);
  auto gmm = GaussianMixtureSharedCov(data.x, 2, 0);
  ASSERT_TRUE(km.ok()) << km.status();
  ASSERT_TRUE(gmm.ok()) << gmm.status();
  const double ari_km = metrics::AdjustedRandIndex(data.truth, km->labels);
  const double ari_gmm = metrics::AdjustedRandIndex(data.truth, gmm->labels);
  std::cout << "elongated clusters: ARI kmeans " << ari_km << ", mclust EEE " << ari_gmm << "\n";
  EXPECT_GT(ari_gmm, 0.99);
  EXPECT_LT(ari_km, 0.2);
}

TEST(Cluster, SameSeedSameLabels) {
  Data data = Blobs(5, 40, 6, 2.5, 1.0, 3);  // overlapping: ties and local optima matter
  for (auto m : {ClusterMethod::kKmeans, ClusterMethod::kMclust, ClusterMethod::kLeiden}) {
    ClusterOptions options;
    options.method = m;
    options.n_clusters = 5;
    options.seed = 42;
    auto a = Cluster(data.x, options);
    auto b = Cluster(data.x, options);
    ASSERT_TRUE(a.ok() && b.ok()) << ClusterMethodName(m);
    EXPECT_EQ(a->labels, b->labels) << ClusterMethodName(m);
  }
}

TEST(Cluster, EmptyComponentsStayFinite) {
  // Three distinct points repeated, asked for five clusters.
  std::vector<float> v;
  for (int i = 0; i < 30; ++i) {
    v.push_back(static_cast<float>(i % 3));
    v.push_back(static_cast<float>(2 * (i % 3)));
  }
  torch::Tensor x = torch::from_blob(v.data(), {30, 2}, torch::kFloat).clone();
  auto gmm = GaussianMixtureSharedCov(x, 5, 0);
  ASSERT_TRUE(gmm.ok()) << gmm.status();
  EXPECT_GE(gmm->n_clusters, 3);
  EXPECT_LE(gmm->n_clusters, 5);
  std::vector<int32_t> truth;
  for (int i = 0; i < 30; ++i) truth.push_back(i % 3);
  // Points that coincide share a label.
  EXPECT_DOUBLE_EQ(metrics::Homogeneity(gmm->labels, truth), 1.0);
  auto km = KMeans(x, 5, 0);
  ASSERT_TRUE(km.ok()) << km.status();
  EXPECT_DOUBLE_EQ(metrics::Homogeneity(km->labels, truth), 1.0);
}

TEST(Cluster, LeidenReportsAMissedTarget) {
  Data data = Blobs(3, 20, 4, 12.0, 1.0, 5);
  ClusterOptions options;
  options.leiden_max_steps = 2;
  options.resolution_max = 0.01;  // far too coarse to reach 30 clusters
  auto c = LeidenWithResolutionSearch(data.x, 30, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_LT(c->n_clusters, 30);
  EXPECT_EQ(c->labels.size(), 60u);
  ExpectFirstAppearanceOrder(*c);
}

TEST(Cluster, RejectsBadInputNamingTheProblem) {
  Data data = Blobs(2, 5, 3, 5.0, 1.0, 1);
  for (auto m : {ClusterMethod::kKmeans, ClusterMethod::kMclust, ClusterMethod::kLeiden}) {
    ClusterOptions options;
    options.method = m;
    options.n_clusters = 0;
    auto zero = Cluster(data.x, options);
    ASSERT_FALSE(zero.ok());
    EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(zero.status().message().find("n_clusters"), std::string::npos);
    options.n_clusters = 11;
    EXPECT_EQ(Cluster(data.x, options).status().code(), absl::StatusCode::kInvalidArgument);
    options.n_clusters = 2;
    torch::Tensor bad = data.x.clone();
    bad[3][1] = std::numeric_limits<float>::quiet_NaN();
    auto nan = Cluster(bad, options);
    ASSERT_FALSE(nan.ok());
    EXPECT_NE(nan.status().message().find("non-finite"), std::string::npos);
    bad[3][1] = std::numeric_limits<float>::infinity();
    EXPECT_EQ(Cluster(bad, options).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Cluster(torch::zeros({0, 3}), options).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Cluster(torch::zeros({10}), options).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(Cluster, OneClusterAndAllSingletons) {
  Data data = Blobs(2, 6, 3, 5.0, 1.0, 2);
  auto one = KMeans(data.x, 1, 0);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->n_clusters, 1);
  auto all = KMeans(data.x, 12, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->n_clusters, 12);
  auto gmm = GaussianMixtureSharedCov(data.x, 1, 0);
  ASSERT_TRUE(gmm.ok());
  EXPECT_EQ(gmm->n_clusters, 1);
}

TEST(Cluster, SingleRowAndDoubleInput) {
  torch::Tensor one = torch::ones({1, 3});
  Data data = Blobs(3, 20, 5, 12.0, 1.0, 9);
  torch::Tensor x64 = data.x.to(torch::kDouble);
  for (auto m : {ClusterMethod::kKmeans, ClusterMethod::kMclust, ClusterMethod::kLeiden}) {
    ClusterOptions options;
    options.method = m;
    options.n_clusters = 1;
    auto c = Cluster(one, options);
    ASSERT_TRUE(c.ok()) << ClusterMethodName(m) << ": " << c.status();
    EXPECT_EQ(c->labels, std::vector<int32_t>{0});
    options.n_clusters = 3;
    auto d = Cluster(x64, options);
    ASSERT_TRUE(d.ok()) << ClusterMethodName(m) << ": " << d.status();
    EXPECT_DOUBLE_EQ(metrics::AdjustedRandIndex(data.truth, d->labels), 1.0)
        << ClusterMethodName(m);
  }
}

TEST(TopPrincipalComponents, ShapeVarianceOrderAndSign) {
  Data data = Blobs(3, 30, 6, 6.0, 1.0, 4);
  auto pcs = TopPrincipalComponents(data.x, 4);
  ASSERT_TRUE(pcs.ok()) << pcs.status();
  EXPECT_EQ(pcs->sizes(), (std::vector<int64_t>{90, 4}));
  torch::Tensor var = pcs->var(0);
  for (int i = 0; i < 3; ++i) EXPECT_GE(var[i].item<float>(), var[i + 1].item<float>());
  auto more = TopPrincipalComponents(data.x, 50);  // capped at d
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->size(1), 6);
  EXPECT_TRUE(torch::allclose(more->narrow(1, 0, 4), *pcs, 1e-4, 1e-4));
}

}  // namespace
}  // namespace candies
