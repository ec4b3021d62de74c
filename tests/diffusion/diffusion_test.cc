#include "core/models/diffusion.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/models/diffusion_internal.h"
#include "core/models/dit.h"

namespace candies {
namespace {

using diffusion_internal::CosineSchedule;

const torch::Device kCpu(torch::kCPU);

// Synthetic problem: low = f(high) + noise with a smooth nonlinear f.
struct Synthetic {
  torch::Tensor high, clean, low;
};

Synthetic MakeSynthetic(int64_t n, int64_t c, int64_t d, double noise_sd, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  Synthetic s;
  s.high = torch::randn({n, c}, gen, torch::kFloat32);
  auto w = torch::randn({c, d}, gen, torch::kFloat32) / std::sqrt(static_cast<double>(c));
  s.clean = torch::tanh(s.high.matmul(w)) * 2.0 + 1.0;
  s.low = s.clean + noise_sd * torch::randn({n, d}, gen, torch::kFloat32);
  return s;
}

DiffusionOptions TinyOptions() {
  DiffusionOptions o;
  o.hidden = 32;
  o.depth = 1;
  o.heads = 2;
  o.timesteps = 100;
  o.sampler = DiffusionSampler::kDdim;
  o.sample_steps = 20;
  o.batch_size = 64;
  o.max_epochs = 150;
  o.patience = 0;
  o.lr_step = 100;
  o.seed = 7;
  return o;
}

double ErrorRatio(const torch::Tensor& denoised, const Synthetic& s) {
  return ((denoised - s.clean).norm() / (s.low - s.clean).norm()).item<double>();
}

TEST(CosineScheduleTest, KnownValuesAndBounds) {
  const int64_t T = 200;
  CosineSchedule sched(T);
  auto f = [](double u) {
    const double v = std::cos((u + 0.008) / 1.008 * M_PI / 2);
    return v * v;
  };
  auto betas = sched.betas.accessor<float, 1>();
  auto ab = sched.alpha_bar.accessor<float, 1>();
  EXPECT_NEAR(betas[0], 1 - f(1.0 / T) / f(0.0), 1e-7);
  EXPECT_NEAR(ab[0], 1 - betas[0], 1e-7);
  EXPECT_FLOAT_EQ(sched.alpha_bar_prev[0].item<float>(), 1.0f);
  EXPECT_NEAR(ab[T / 2], f(0.5 + 1.0 / T) / f(0.0), 1e-5);  // product telescopes
  EXPECT_FLOAT_EQ(betas[T - 1], 0.999f);                      // clipped at the end
  for (int64_t t = 0; t < T; ++t) {
    EXPECT_GT(betas[t], 0.0f);
    EXPECT_LE(betas[t], 0.999f);
    if (t > 0) {
      EXPECT_LT(ab[t], ab[t - 1]) << "alpha_bar must decrease at t=" << t;
    }
  }
}

TEST(CosineScheduleTest, ForwardNoisingStatistics) {
  CosineSchedule sched(100);
  auto gen = at::detail::createCPUGenerator(3);
  const int64_t n = 40000;
  auto x0 = torch::full({n, 2}, 0.6f);
  auto eps = torch::randn({n, 2}, gen, torch::kFloat32);
  for (int64_t t : {0, 30, 70, 99}) {
    auto xt = diffusion_internal::AddNoise(sched, x0, eps, torch::full({n}, t, torch::kLong));
    const double ab = sched.alpha_bar[t].item<double>();
    EXPECT_NEAR(xt.mean().item<double>(), std::sqrt(ab) * 0.6, 0.02) << "t=" << t;
    EXPECT_NEAR(xt.var().item<double>(), 1 - ab, 0.03) << "t=" << t;
  }
}

TEST(DdimTimestepsTest, EvenlySpacedDescending) {
  auto steps = diffusion_internal::DdimTimesteps(100, 5);
  EXPECT_EQ(steps, (std::vector<int64_t>{99, 74, 50, 25, 0}));
  EXPECT_EQ(diffusion_internal::DdimTimesteps(10, 50).size(), 10u);
}

TEST(DitTest, AdaLnZeroInitGivesZeroOutput) {
  DitConfig config{6, 3, 16, 2, 4, 4.0, 256};
  Dit net(config);
  net->Initialize(at::detail::createCPUGenerator(1));
  auto out = net->forward(torch::randn({5, 6}), torch::randn({5, 3}), torch::tensor({1, 5, 9, 20, 3}),
                          torch::randn({5, 3}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 6}));
  EXPECT_TRUE(torch::equal(out, torch::zeros_like(out)));
  // The zero-initialised output layer is not dead: its gradient is non-zero.
  out.sum().backward();
  EXPECT_GT(net->final_linear->bias.grad().abs().sum().item<double>(), 0.0);
}

TEST(DitTest, AttentionMixesSpotsOfTheBatch) {
  DitConfig config{6, 3, 16, 2, 4, 4.0, 256};
  Dit net(config);
  net->Initialize(at::detail::createCPUGenerator(1));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.normal_(0, 0.3);  // leave the zero init
  }
  auto x = torch::randn({4, 6}), xh = torch::randn({4, 3});
  auto t = torch::tensor({3, 3, 3, 3});
  auto a = net->forward(x, xh, t, xh);
  auto x2 = x.clone();
  x2[2] += 1.0;  // change only spot 2
  auto b = net->forward(x2, xh, t, xh);
  EXPECT_GT((a[0] - b[0]).abs().max().item<double>(), 1e-4) << "spot 0 must see spot 2";
  // A batch of one spot is unaffected by the others (no leakage across calls).
  auto single = net->forward(x.slice(0, 0, 1), xh.slice(0, 0, 1), t.slice(0, 0, 1), xh.slice(0, 0, 1));
  EXPECT_GT((single[0] - a[0]).abs().max().item<double>(), 1e-4);
}

// A perfect generative model regenerates the noise the condition cannot
// explain (error ratio ~1); temperature 0 DDIM starts from the prior's centre
// and follows the deterministic ODE towards the conditional mean.
TEST(DenoiseKFoldTest, DdimDenoisesSyntheticProblem) {
  auto s = MakeSynthetic(240, 4, 8, 0.6, 11);
  auto o = TinyOptions();
  o.temperature = 0.0;
  auto result = DenoiseKFold(s.low, s.high, o, kCpu);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->denoised.sizes(), s.low.sizes());
  ASSERT_EQ(result->fold_losses.size(), 3u);
  EXPECT_LT(result->fold_losses[0].back(), result->fold_losses[0].front());
  const double ratio = ErrorRatio(result->denoised, s);
  std::printf("DDIM error ratio |den - f| / |low - f| = %.3f\n", ratio);
  EXPECT_LT(ratio, 0.75);
}

TEST(DenoiseKFoldTest, DdpmDenoisesSyntheticProblem) {
  auto s = MakeSynthetic(240, 4, 8, 0.6, 12);
  auto o = TinyOptions();
  o.sampler = DiffusionSampler::kDdpm;
  o.temperature = 0.3;
  auto result = DenoiseKFold(s.low, s.high, o, kCpu);
  ASSERT_TRUE(result.ok()) << result.status();
  const double ratio = ErrorRatio(result->denoised, s);
  std::printf("DDPM error ratio |den - f| / |low - f| = %.3f\n", ratio);
  EXPECT_LT(ratio, 0.75);
}

TEST(DenoiseKFoldTest, NeverTrainsOnHeldOutSpots) {
  const int64_t n = 50;
  auto s = MakeSynthetic(n, 3, 4, 0.5, 2);
  auto o = TinyOptions();
  o.max_epochs = 1;
  o.sample_steps = 2;
  std::vector<std::set<int64_t>> heldouts;
  diffusion_internal::SetFoldHook([&](int64_t fold, const std::vector<int64_t>& train,
                                      const std::vector<int64_t>& heldout) {
    EXPECT_EQ(fold, static_cast<int64_t>(heldouts.size()));
    std::set<int64_t> h(heldout.begin(), heldout.end()), tr(train.begin(), train.end());
    EXPECT_EQ(h.size(), heldout.size());
    EXPECT_EQ(tr.size() + h.size(), static_cast<size_t>(n));
    for (int64_t r : train) EXPECT_EQ(h.count(r), 0u) << "trains on held-out spot " << r;
    heldouts.push_back(h);
  });
  auto result = DenoiseKFold(s.low, s.high, o, kCpu);
  diffusion_internal::SetFoldHook(nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(heldouts.size(), 3u);
  std::set<int64_t> all;
  for (const auto& h : heldouts) {
    EXPECT_GE(h.size(), 16u);
    for (int64_t r : h) EXPECT_TRUE(all.insert(r).second) << "spot " << r << " held out twice";
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(n));
}

// Fold centring moves each fold's generated rows, and nothing else, so that
// every fold has the mean of all generated rows (the per-model offset removed).
TEST(DenoiseKFoldTest, CenterFoldsShiftsEachFoldToTheOverallMean) {
  auto s = MakeSynthetic(90, 3, 4, 0.5, 5);
  auto o = TinyOptions();
  o.max_epochs = 3;  // barely trained fold models: their offsets differ
  o.center_folds = false;
  auto raw = DenoiseKFold(s.low, s.high, o, kCpu);
  o.center_folds = true;
  auto centred = DenoiseKFold(s.low, s.high, o, kCpu);
  ASSERT_TRUE(raw.ok() && centred.ok());
  const auto split = diffusion_internal::KFoldSplit(90, o.folds, o.seed);
  auto overall = raw->denoised.mean(0, true);
  double spread = 0;
  for (const auto& rows : split) {
    auto idx = torch::tensor(rows, torch::kLong);
    auto r = raw->denoised.index_select(0, idx), c = centred->denoised.index_select(0, idx);
    spread = std::max(spread, (r.mean(0, true) - overall).abs().max().item<double>());
    EXPECT_TRUE(torch::allclose(c.mean(0, true), overall, 1e-5, 1e-4));
    EXPECT_TRUE(torch::allclose(c, r - r.mean(0, true) + overall, 1e-5, 1e-4));
  }
  EXPECT_GT(spread, 1e-3) << "the uncentred folds should differ in mean";
}

TEST(DenoiseKFoldTest, DeterministicForASeed) {
  auto s = MakeSynthetic(60, 3, 4, 0.5, 4);
  auto o = TinyOptions();
  o.max_epochs = 3;
  auto a = DenoiseKFold(s.low, s.high, o, kCpu);
  auto b = DenoiseKFold(s.low, s.high, o, kCpu);
  o.seed = 8;
  auto c = DenoiseKFold(s.low, s.high, o, kCpu);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(torch::equal(a->denoised, b->denoised));
  EXPECT_FALSE(torch::equal(a->denoised, c->denoised));
}

TEST(TrainedDenoiserTest, SaveLoadRoundTripGivesIdenticalSamples) {
  auto s = MakeSynthetic(64, 3, 5, 0.5, 5);
  auto o = TinyOptions();
  o.max_epochs = 5;
  o.sampler = DiffusionSampler::kDdpm;  // stochastic sampler: the seed must round-trip too
  auto model = TrainDenoiser(s.low, s.high, o, kCpu);
  ASSERT_TRUE(model.ok()) << model.status();
  auto a = ApplyDenoiser(**model, s.high, kCpu);
  ASSERT_TRUE(a.ok()) << a.status();
  const auto dir = std::filesystem::temp_directory_path() / "candies_diffusion_roundtrip";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(SaveDenoiser(**model, dir.string()).ok());
  auto loaded = LoadDenoiser(dir.string(), kCpu);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto b = ApplyDenoiser(**loaded, s.high, kCpu);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(torch::equal(*a, *b));
  EXPECT_EQ(DenoiserBytes(**model), DenoiserBytes(**loaded));
  EXPECT_GT(DenoiserBytes(**model), 32 * 32 * 4);
  EXPECT_FALSE(ApplyDenoiser(**loaded, torch::randn({4, 7}), kCpu).ok());  // wrong width
  {
    std::ofstream meta(dir / "denoiser.txt", std::ios::app);
    meta << "hidden abc\n";  // a second, malformed value for a field
  }
  EXPECT_EQ(LoadDenoiser(dir.string(), kCpu).status().code(), absl::StatusCode::kDataLoss);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(LoadDenoiser(dir.string(), kCpu).status().code(), absl::StatusCode::kNotFound);
}

TEST(DenoiseKFoldTest, RejectsBadInput) {
  auto s = MakeSynthetic(30, 3, 4, 0.5, 6);
  auto o = TinyOptions();
  auto expect_invalid = [&](const torch::Tensor& low, const torch::Tensor& high, const DiffusionOptions& opt,
                            const std::string& field) {
    auto r = DenoiseKFold(low, high, opt, kCpu);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(r.status().message()).find(field), std::string::npos) << r.status();
  };
  expect_invalid(s.low, s.high.slice(0, 0, 29), o, "high");
  expect_invalid(s.low.slice(0, 0, 5), s.high.slice(0, 0, 5), o, "folds");
  auto nan = s.low.clone();
  nan[3][1] = std::nan("");
  expect_invalid(nan, s.high, o, "low");
  expect_invalid(s.low.flatten(), s.high, o, "low");
  auto bad = o;
  bad.heads = 3;
  expect_invalid(s.low, s.high, bad, "heads");
  bad = o;
  bad.hidden = 0;
  expect_invalid(s.low, s.high, bad, "hidden");
  bad = o;
  bad.batch_size = 0;
  expect_invalid(s.low, s.high, bad, "batch_size");
  bad = o;
  bad.sample_steps = 1000;
  expect_invalid(s.low, s.high, bad, "sample_steps");
  bad = o;
  bad.temperature = -1;
  expect_invalid(s.low, s.high, bad, "temperature");
  EXPECT_FALSE(ParseDiffusionSampler("ddpx").ok());
  EXPECT_EQ(*ParseDiffusionSampler("DDIM"), DiffusionSampler::kDdim);
}

TEST(DenoiseKFoldTest, CancellationStopsWithCancelledError) {
  auto s = MakeSynthetic(60, 3, 4, 0.5, 9);
  auto o = TinyOptions();
  CancelToken token;
  int events = 0;
  ProgressSink sink = [&](const ProgressEvent& ev) {
    EXPECT_EQ(ev.stage, "denoise_fold1");
    EXPECT_GE(ev.eta_seconds, 0.0);
    if (++events == 2) token.Cancel();
  };
  auto r = DenoiseKFold(s.low, s.high, o, kCpu, sink, &token);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(events, 2);
}

}  // namespace
}  // namespace candies
