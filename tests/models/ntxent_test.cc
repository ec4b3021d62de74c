// The fused NT-Xent (core/models/ntxent.h) against the unfused formula it
// replaces: loss values and gradients, float rounding apart.
#include "core/models/ntxent.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <torch/torch.h>

#include "core/models/integration.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

namespace F = torch::nn::functional;

torch::Tensor Normalize(const torch::Tensor& x, int64_t dim) {
  return F::normalize(x, F::NormalizeFuncOptions().dim(dim));
}

// The unfused reference (the code before the fused loss): the whole 2N x 2N
// logit matrix, the diagonal masked, cross-entropy against the partner row.
// `mask_diagonal` = false is the mistake the comparison must catch.
torch::Tensor ReferenceNtXent(const torch::Tensor& z1, const torch::Tensor& z2, double t,
                              bool mask_diagonal = true) {
  const int64_t n = z1.size(0);
  auto f = Normalize(torch::cat({z1, z2}, 0), 1);
  auto logits = torch::mm(f, f.t()) / t;
  if (mask_diagonal) {
    auto eye = torch::eye(2 * n, torch::TensorOptions().dtype(torch::kBool));
    logits = logits.masked_fill(eye, -std::numeric_limits<double>::infinity());
  }
  auto partner = torch::remainder(torch::arange(2 * n, torch::kLong) + n, 2 * n);
  return F::cross_entropy(logits, partner);
}

struct Grads {
  double loss;
  torch::Tensor g1, g2;
};

// Loss and gradients of `loss_fn` at (z1, z2), in the dtype given.
template <typename Fn>
Grads Evaluate(const torch::Tensor& z1, const torch::Tensor& z2, torch::Dtype dtype, Fn loss_fn) {
  auto a = z1.to(dtype).detach().requires_grad_(true);
  auto b = z2.to(dtype).detach().requires_grad_(true);
  torch::Tensor loss = loss_fn(a, b);
  loss.backward();
  return {loss.item<double>(), a.grad().to(torch::kDouble), b.grad().to(torch::kDouble)};
}

double MaxAbs(const torch::Tensor& x) { return x.abs().max().item<double>(); }

// Expects `got` to equal `want` within rel (of the largest reference value)
// plus `slack`: where a gradient is a small difference of large terms (n = 1
// is exactly 0), the float32 rounding of the unfused formula itself, so the
// fused loss is asked to be as exact as the code it replaces.
void ExpectClose(const Grads& got, const Grads& want, double rel, double slack,
                 const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_NEAR(got.loss, want.loss, rel * std::max(1.0, std::abs(want.loss)));
  const double tol = rel * std::max(MaxAbs(want.g1), MaxAbs(want.g2)) + slack;
  EXPECT_LE(MaxAbs(got.g1 - want.g1), tol);
  EXPECT_LE(MaxAbs(got.g2 - want.g2), tol);
}

// The gradient error of the unfused float32 formula against float64, times 4.
double UnfusedSlack(const Grads& unfused_float, const Grads& exact) {
  return 4 * std::max(MaxAbs(unfused_float.g1 - exact.g1), MaxAbs(unfused_float.g2 - exact.g2));
}

// float32 against the float64 reference: rounding of 2N-term sums of logits up
// to 1/t; the float64 fused loss must agree to double rounding.
constexpr double kFloatRel = 2e-5;
constexpr double kDoubleRel = 1e-11;
constexpr double kDoubleSlack = 1e-15;

TEST(FusedNtXentTest, EqualsReferenceOverSizesTemperaturesAndBlocks) {
  torch::manual_seed(11);
  // Odd sizes; 2N = 74 and 600 are not multiples of the forced blocks (7, 64);
  // 0 = the automatic block (one block below 2N ~ 360 rows, several above).
  for (int64_t n : {1, 2, 5, 37, 300}) {
    for (int64_t d : {3, 16}) {
      auto z1 = torch::randn({n, d}), z2 = torch::randn({n, d}) + 0.5 * z1;
      for (double t : {0.07, 0.5, 1.0}) {
        auto reference = [&](auto& a, auto& b) { return ReferenceNtXent(a, b, t); };
        const Grads ref = Evaluate(z1, z2, torch::kDouble, reference);
        const double slack = UnfusedSlack(Evaluate(z1, z2, torch::kFloat, reference), ref);
        for (int64_t block : {0, 7, 64}) {
          auto fused = [&](auto& a, auto& b) {
            return FusedNtXent(Normalize(torch::cat({a, b}, 0), 1).unsqueeze(0), t, block)
                .squeeze(0);
          };
          const std::string what = "n=" + std::to_string(n) + " d=" + std::to_string(d) +
                                   " t=" + std::to_string(t) + " block=" + std::to_string(block);
          ExpectClose(Evaluate(z1, z2, torch::kFloat, fused), ref, kFloatRel, slack,
                      what + " float");
          ExpectClose(Evaluate(z1, z2, torch::kDouble, fused), ref, kDoubleRel, kDoubleSlack,
                      what + " double");
        }
        // The public entry point (automatic block) as the integration calls it.
        ExpectClose(
            Evaluate(z1, z2, torch::kFloat, [&](auto& a, auto& b) { return NtXent(a, b, t); }), ref,
            kFloatRel, slack, "NtXent n=" + std::to_string(n));
      }
    }
  }
}

TEST(FusedNtXentTest, ComparisonCatchesAnUnmaskedDiagonal) {
  // The tolerance above is far below the effect of forgetting to exclude each
  // anchor's self-similarity, so a fused loss without the mask would fail.
  torch::manual_seed(12);
  auto z1 = torch::randn({37, 16}), z2 = torch::randn({37, 16});
  for (double t : {0.07, 0.5, 1.0}) {
    const Grads fused = Evaluate(z1, z2, torch::kFloat, [&](auto& a, auto& b) {
      return FusedNtXent(Normalize(torch::cat({a, b}, 0), 1).unsqueeze(0), t, 7).squeeze(0);
    });
    const Grads unmasked = Evaluate(z1, z2, torch::kDouble, [&](auto& a, auto& b) {
      return ReferenceNtXent(a, b, t, /*mask_diagonal=*/false);
    });
    EXPECT_GT(std::abs(fused.loss - unmasked.loss), 100 * kFloatRel * std::abs(unmasked.loss));
    EXPECT_GT(MaxAbs(fused.g1 - unmasked.g1), 100 * kFloatRel * MaxAbs(unmasked.g1));
  }
}

TEST(FusedNtXentTest, BatchedMembersEachEqualTheReference) {
  // The ensemble's layout: M x N x d per view; a weighted sum of the member
  // losses checks that each member gets its own gradient, scaled by its weight.
  torch::manual_seed(13);
  const int64_t m = 3, n = 41, d = 8;
  const double t = 0.07;
  auto z1 = torch::randn({m, n, d}), z2 = torch::randn({m, n, d});
  auto weights = torch::tensor({1.0, 2.0, 0.5});
  for (int64_t block : {0, 16}) {
    auto a = z1.clone().requires_grad_(true), b = z2.clone().requires_grad_(true);
    torch::Tensor losses = block == 0 ? NtXentBatched(a, b, t)
                                      : FusedNtXent(Normalize(torch::cat({a, b}, 1), 2), t, block);
    ASSERT_EQ(losses.sizes(), torch::IntArrayRef({m}));
    (losses * weights.to(torch::kFloat)).sum().backward();
    for (int64_t k = 0; k < m; ++k) {
      const double w = weights[k].item<double>();
      Grads ref = Evaluate(z1[k], z2[k], torch::kDouble,
                           [&](auto& x, auto& y) { return ReferenceNtXent(x, y, t) * w; });
      ref.loss /= w;
      const Grads got{losses[k].item<double>(), a.grad()[k].to(torch::kDouble),
                      b.grad()[k].to(torch::kDouble)};
      ExpectClose(got, ref, kFloatRel, 0.0,
                  "member " + std::to_string(k) + " block " + std::to_string(block));
    }
  }
}

TEST(FusedNtXentTest, MinibatchedEqualsTheReferenceOverChunks) {
  // Above contrastive_batch the loss is the mean over chunks of a permutation;
  // a last chunk of one spot is dropped (no negatives).
  torch::manual_seed(14);
  const int64_t m = 2, n = 29, d = 6, batch = 7;
  const double t = 0.1;
  auto z1 = torch::randn({m, n, d}), z2 = torch::randn({m, n, d});
  auto perms = torch::stack({torch::randperm(n, torch::kLong), torch::randperm(n, torch::kLong)});
  auto a = z1.clone().requires_grad_(true), b = z2.clone().requires_grad_(true);
  torch::Tensor losses = NtXentMinibatchedBatched(a, b, t, batch, perms);
  losses.sum().backward();
  for (int64_t k = 0; k < m; ++k) {
    const Grads ref = Evaluate(z1[k], z2[k], torch::kDouble, [&](auto& x, auto& y) {
      std::vector<torch::Tensor> parts;
      for (int64_t s = 0; s < n; s += batch) {
        const int64_t len = std::min(batch, n - s);
        if (len < 2) break;
        auto ids = perms[k].narrow(0, s, len);
        parts.push_back(ReferenceNtXent(x.index_select(0, ids), y.index_select(0, ids), t));
      }
      return torch::stack(parts).mean();
    });
    const Grads got{losses[k].item<double>(), a.grad()[k].to(torch::kDouble),
                    b.grad()[k].to(torch::kDouble)};
    ExpectClose(got, ref, kFloatRel, 0.0, "member " + std::to_string(k));
  }
}

}  // namespace
}  // namespace candies
