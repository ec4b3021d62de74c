#include "core/models/integration.h"

#include <cmath>

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace candies {
namespace {

// Direct formula: for each anchor a in the 2N rows, -log(exp(s(a,p)/t) / sum_{j != a} exp(s(a,j)/t)).
double DirectNtXent(const torch::Tensor& z1, const torch::Tensor& z2, double t) {
  auto f = torch::cat({z1, z2}, 0).to(torch::kFloat64);
  f = f / f.norm(2, 1, true);
  const int64_t m = f.size(0), n = z1.size(0);
  double total = 0;
  for (int64_t a = 0; a < m; ++a) {
    const int64_t p = (a + n) % m;
    double denom = 0;
    for (int64_t j = 0; j < m; ++j)
      if (j != a) denom += std::exp((f[a] * f[j]).sum().item<double>() / t);
    total += -((f[a] * f[p]).sum().item<double>() / t - std::log(denom));
  }
  return total / m;
}

TEST(NtXentTest, EqualsDirectFormula) {
  torch::manual_seed(1);
  auto z1 = torch::randn({4, 3}), z2 = torch::randn({4, 3});
  EXPECT_NEAR(NtXent(z1, z2, 0.5).item<double>(), DirectNtXent(z1, z2, 0.5), 1e-4);
  EXPECT_NEAR(NtXent(z1, z2, 0.07).item<double>(), DirectNtXent(z1, z2, 0.07), 1e-3);
}

TEST(NtXentTest, MinibatchedEqualsFullWhenBatchCoversN) {
  torch::manual_seed(2);
  auto z1 = torch::randn({10, 5}), z2 = torch::randn({10, 5});
  auto perm = torch::randperm(10, torch::kLong);
  const double full = NtXent(z1, z2, 0.1).item<double>();
  EXPECT_NEAR(NtXentMinibatched(z1, z2, 0.1, 10, perm).item<double>(), full, 1e-6);
  EXPECT_NEAR(NtXentMinibatched(z1, z2, 0.1, 64, perm).item<double>(), full, 1e-6);
  // Two chunks of 5: the mean of the two chunk losses.
  auto ids_a = perm.narrow(0, 0, 5), ids_b = perm.narrow(0, 5, 5);
  const double expect = (NtXent(z1.index_select(0, ids_a), z2.index_select(0, ids_a), 0.1).item<double>() +
                         NtXent(z1.index_select(0, ids_b), z2.index_select(0, ids_b), 0.1).item<double>()) / 2;
  EXPECT_NEAR(NtXentMinibatched(z1, z2, 0.1, 5, perm).item<double>(), expect, 1e-6);
}

torch::Tensor Identity(int64_t n) {
  auto idx = torch::arange(n, torch::kLong);
  return torch::sparse_coo_tensor(torch::stack({idx, idx}), torch::ones({n}), {n, n}).coalesce();
}

TEST(IntegrationTest, TrainsAndSeparatesTwoGroups) {
  torch::manual_seed(3);
  const int64_t n = 80;
  auto group = torch::cat({torch::zeros({n / 2}), torch::ones({n / 2})}).unsqueeze(1);
  auto x1 = group * 3 + torch::randn({n, 6});
  auto x2 = group * 3 + torch::randn({n, 4});
  IntegrationGraphs g{Identity(n), Identity(n), Identity(n), Identity(n)};
  IntegrationOptions o;
  o.epochs = 50;
  o.out_dim = 8;
  o.contrastive_batch = 32;  // exercises the minibatched path
  auto r = TrainIntegration(x1, x2, g, o, torch::kCPU);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->joint.size(0), n);
  EXPECT_EQ(r->joint.size(1), 8);
  EXPECT_EQ(r->attention.size(1), 2);
  ASSERT_EQ(r->losses.size(), 1u);
  EXPECT_LT(r->losses[0].back(), r->losses[0].front());
  // Group centroids are further apart than the within-group spread.
  auto a = r->joint.narrow(0, 0, n / 2), b = r->joint.narrow(0, n / 2, n / 2);
  const double between = (a.mean(0) - b.mean(0)).norm().item<double>();
  const double within = (a - a.mean(0)).norm(2, 1).mean().item<double>();
  EXPECT_GT(between, within);
}

// Two groups, identity graphs: a small problem every integration test shares.
struct TwoGroups {
  torch::Tensor x1, x2;
  IntegrationGraphs g;
};
TwoGroups MakeTwoGroups(int64_t n) {
  torch::manual_seed(3);
  auto group = torch::cat({torch::zeros({n / 2}), torch::ones({n / 2})}).unsqueeze(1);
  return {group * 3 + torch::randn({n, 6}), group * 3 + torch::randn({n, 4}),
          IntegrationGraphs{Identity(n), Identity(n), Identity(n), Identity(n)}};
}

TEST(IntegrationTest, EnsembleIsThePrincipalComponentsOfItsMembers) {
  const int64_t n = 60;
  TwoGroups d = MakeTwoGroups(n);
  IntegrationOptions o;
  o.epochs = 20;
  o.out_dim = 5;
  // The members are the networks single runs train one after another from
  // the same generator stream.
  torch::manual_seed(11);
  auto m1 = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  auto m2 = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_FALSE(torch::allclose(m1->joint, m2->joint)) << "members start from different weights";
  o.ensemble = 2;
  torch::manual_seed(11);
  auto e = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->losses.size(), 2u);
  EXPECT_EQ(e->losses[0], m1->losses[0]);
  EXPECT_EQ(e->losses[1], m2->losses[0]);
  ASSERT_EQ(e->joint.sizes(), (std::vector<int64_t>{n, 5}));
  EXPECT_TRUE(torch::allclose(e->attention, (m1->attention + m2->attention) / 2, 1e-5, 1e-6));
  // Independently: SVD of the centred concatenation; U S up to each column's sign.
  auto cat = torch::cat({m1->joint, m2->joint}, 1).to(torch::kDouble);
  auto svd = torch::linalg_svd(cat - cat.mean(0, true), /*full_matrices=*/false);
  auto scores = (std::get<0>(svd) * std::get<1>(svd)).narrow(1, 0, 5);
  auto got = e->joint.to(torch::kDouble);
  for (int64_t c = 0; c < 5; ++c) {
    const double sign = (got.select(1, c) * scores.select(1, c)).sum().item<double>() > 0 ? 1 : -1;
    EXPECT_TRUE(torch::allclose(got.select(1, c), sign * scores.select(1, c), 1e-3, 1e-3))
        << "component " << c;
  }
  // Same seed, same ensemble.
  torch::manual_seed(11);
  auto again = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal(again->joint, e->joint));
}

TEST(IntegrationTest, EnsembleSizeOutsideItsRangeNamesTheField) {
  TwoGroups d = MakeTwoGroups(20);
  IntegrationOptions o;
  o.epochs = 2;
  for (int64_t bad : {int64_t{0}, kMaxIntegrationEnsemble + 1}) {
    o.ensemble = bad;
    auto r = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ensemble"), std::string::npos) << r.status();
  }
}

}  // namespace
}  // namespace candies
