#include "core/models/gae.h"

#include <cmath>

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace candies {
namespace {

TEST(ZinbTest, MatchesHandComputedValue) {
  // x = 0: -log(pi + (1-pi) (theta/(theta+mu))^theta); x = 3: NB term - log(1-pi).
  const double mu = 2.0, theta = 1.5, pi = 0.2;
  const double zero = -std::log(pi + (1 - pi) * std::pow(theta / (theta + mu), theta));
  const double x = 3.0;
  const double nb = std::lgamma(theta) + std::lgamma(x + 1) - std::lgamma(x + theta) +
                    (theta + x) * std::log(1 + mu / theta) + x * (std::log(theta) - std::log(mu)) -
                    std::log(1 - pi);
  auto xs = torch::tensor({0.0, 3.0}, torch::kFloat64);
  auto m = torch::full({2}, mu, torch::kFloat64);
  auto t = torch::full({2}, theta, torch::kFloat64);
  auto p = torch::full({2}, pi, torch::kFloat64);
  EXPECT_NEAR(ZinbNll(xs, m, t, p).item<double>(), (zero + nb) / 2, 1e-6);
  // The NB term is the negative log of the NB pmf: check against the pmf directly.
  const double pmf = std::exp(std::lgamma(x + theta) - std::lgamma(theta) - std::lgamma(x + 1)) *
                     std::pow(theta / (theta + mu), theta) * std::pow(mu / (theta + mu), x);
  EXPECT_NEAR(nb, -std::log((1 - pi) * pmf), 1e-9);
}

torch::Tensor RingAdjacency(int64_t n) {
  std::vector<int64_t> r, c;
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d : {-1, 0, 1}) {
      r.push_back(i);
      c.push_back((i + d + n) % n);
      v.push_back(1.0f / 3);
    }
  auto idx = torch::stack({torch::tensor(r), torch::tensor(c)});
  return torch::sparse_coo_tensor(idx, torch::tensor(v), {n, n}).coalesce();
}

TEST(GaeTest, LossDecreasesAndEmbeddingShape) {
  torch::manual_seed(0);
  const int64_t n = 60;
  auto feats = torch::randn({n, 12});
  auto counts = torch::poisson(torch::full({n, 20}, 2.0));
  GaeOptions o;
  o.epochs = 60;
  o.hidden = 32;
  o.lr = 1e-2;  // a few epochs suffice at this rate
  auto r = TrainGae(feats, counts, RingAdjacency(n), 8, o, torch::kCPU, "gae_test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->embedding.size(0), n);
  EXPECT_EQ(r->embedding.size(1), 8);
  ASSERT_EQ(r->losses.size(), 60u);
  EXPECT_LT(r->losses.back(), 0.8 * r->losses.front());
  EXPECT_TRUE(torch::isfinite(r->embedding).all().item<bool>());
  // Without counts (protein path) the MSE still falls.
  auto p = TrainGae(feats, torch::Tensor(), RingAdjacency(n), 4, o, torch::kCPU, "gae_test");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->embedding.size(1), 4);
  EXPECT_LT(p->losses.back(), p->losses.front());
}

TEST(GaeTest, CancelAndBadInput) {
  CancelToken cancel;
  cancel.Cancel();
  GaeOptions o;
  o.epochs = 5;
  auto r = TrainGae(torch::randn({10, 3}), torch::Tensor(), RingAdjacency(10), 2, o, torch::kCPU,
                    "gae_test", {}, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  auto bad = TrainGae(torch::randn({10, 3}), torch::Tensor(), RingAdjacency(9), 2, o, torch::kCPU,
                      "gae_test");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace candies
