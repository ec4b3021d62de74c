#include "core/models/diffusion.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/models/diffusion_internal.h"
#include "core/models/dit.h"
#include "core/runtime/torch_compat.h"
#include "core/util/status_macros.h"

namespace candies {

using diffusion_internal::CosineSchedule;

// The trained network with everything needed to sample from it again.
class TrainedDenoiser {
 public:
  DiffusionOptions options;
  DitConfig config;
  Dit net{nullptr};
  // low_scaled = (low - low_center) / low_half_range lies in [-1, 1] per feature.
  torch::Tensor low_center, low_half_range;  // 1 x d, CPU float32
  // high_scaled = (high - high_mean) / high_std.
  torch::Tensor high_mean, high_std;  // 1 x c, CPU float32
};

absl::StatusOr<DiffusionSampler> ParseDiffusionSampler(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "ddpm") return DiffusionSampler::kDdpm;
  if (lower == "ddim") return DiffusionSampler::kDdim;
  return absl::InvalidArgumentError(
      absl::StrCat("sampler: expected \"ddpm\" or \"ddim\", got \"", std::string(text), "\""));
}

const char* DiffusionSamplerName(DiffusionSampler sampler) {
  return sampler == DiffusionSampler::kDdim ? "ddim" : "ddpm";
}

DiffusionOptions FastDiffusionOptions() {
  // hidden must be >= the embedding width d (256 in the pipeline): x_t enters
  // through Linear(d, hidden) and an epsilon predictor cannot reproduce the
  // noise in directions it cannot see (docs/DIFFUSION.md).
  DiffusionOptions o;
  o.hidden = 256;
  o.depth = 1;
  o.heads = 4;
  o.mlp_ratio = 2.0;
  o.timesteps = 500;
  o.sampler = DiffusionSampler::kDdim;
  o.sample_steps = 10;
  // 0 = start DDIM at the conditional mean: the denoised embedding alone then
  // clusters as well as the integration (bench_quality, docs/SCIENCE.md).
  o.temperature = 0.0;
  o.batch_size = 128;
  // With fold centring 60 epochs keep the denoised-alone ARI of 100 (k-means, five
  // seeds: 0.956 vs 0.957) at 60% of the training time (docs/DIFFUSION.md).
  o.max_epochs = 60;
  o.patience = 10;
  o.lr_step = 100;
  return o;
}

DiffusionOptions PaperDiffusionOptions() { return DiffusionOptions(); }

namespace diffusion_internal {

CosineSchedule::CosineSchedule(int64_t timesteps, double s, double max_beta) : T(timesteps) {
  auto f = [s](double u) {
    const double v = std::cos((u + s) / (1.0 + s) * M_PI / 2.0);
    return v * v;
  };
  std::vector<double> beta(T), ab(T), ab_prev(T);
  double prod = 1.0;
  for (int64_t i = 0; i < T; ++i) {
    const double t1 = static_cast<double>(i) / T, t2 = static_cast<double>(i + 1) / T;
    beta[i] = std::min(1.0 - f(t2) / f(t1), max_beta);
    ab_prev[i] = prod;
    prod *= 1.0 - beta[i];
    ab[i] = prod;
  }
  auto make = [](const std::vector<double>& v) {
    return torch::tensor(v, torch::kFloat64).to(torch::kFloat32);
  };
  auto b = torch::tensor(beta, torch::kFloat64);
  auto a = torch::tensor(ab, torch::kFloat64);
  auto ap = torch::tensor(ab_prev, torch::kFloat64);
  betas = make(beta);
  alphas = (1 - b).to(torch::kFloat32);
  alpha_bar = make(ab);
  alpha_bar_prev = make(ab_prev);
  sqrt_alpha_bar = a.sqrt().to(torch::kFloat32);
  sqrt_one_minus_alpha_bar = (1 - a).sqrt().to(torch::kFloat32);
  sqrt_inv_alpha_bar = (1 / a).sqrt().to(torch::kFloat32);
  sqrt_inv_alpha_bar_minus_one = (1 / a - 1).sqrt().to(torch::kFloat32);
  posterior_coef1 = (b * ap.sqrt() / (1 - a)).to(torch::kFloat32);
  posterior_coef2 = ((1 - ap) * (1 - b).sqrt() / (1 - a)).to(torch::kFloat32);
  posterior_variance = (b * (1 - ap) / (1 - a)).clamp_min(1e-20).to(torch::kFloat32);
}

torch::Tensor AddNoise(const CosineSchedule& schedule, const torch::Tensor& x0,
                       const torch::Tensor& eps, const torch::Tensor& t) {
  auto s1 = schedule.sqrt_alpha_bar.to(x0.device()).index_select(0, t).unsqueeze(1);
  auto s2 = schedule.sqrt_one_minus_alpha_bar.to(x0.device()).index_select(0, t).unsqueeze(1);
  return s1 * x0 + s2 * eps;
}

void ClipGradNormOnDevice(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return;
  for (const auto& g : grads) norms.push_back(g.data().norm(2.0));
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2.0);
  auto coef = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
  for (auto& g : grads) g.data().mul_(coef);
}

std::vector<std::vector<int64_t>> KFoldSplit(int64_t n, int64_t folds, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto perm = torch::randperm(n, gen, torch::kLong);
  auto p = perm.accessor<int64_t, 1>();
  std::vector<std::vector<int64_t>> out(folds);
  int64_t pos = 0;
  for (int64_t f = 0; f < folds; ++f) {
    const int64_t size = n / folds + (f < n % folds ? 1 : 0);
    for (int64_t i = 0; i < size; ++i) out[f].push_back(p[pos++]);
  }
  return out;
}

std::vector<int64_t> DdimTimesteps(int64_t timesteps, int64_t steps) {
  steps = std::max<int64_t>(1, std::min(steps, timesteps));
  std::vector<int64_t> out;
  for (int64_t i = steps - 1; i >= 0; --i) {
    const double v = steps == 1 ? timesteps - 1
                                : static_cast<double>(i) * (timesteps - 1) / (steps - 1);
    const auto t = static_cast<int64_t>(std::llround(v));
    if (out.empty() || out.back() != t) out.push_back(t);
  }
  return out;
}

namespace {
FoldHook& Hook() {
  static FoldHook hook;
  return hook;
}
}  // namespace

void SetFoldHook(FoldHook hook) { Hook() = std::move(hook); }

void SetSampling(TrainedDenoiser& model, DiffusionSampler sampler, int64_t sample_steps,
                 double temperature) {
  model.options.sampler = sampler;
  model.options.sample_steps = sample_steps;
  model.options.temperature = temperature;
}

}  // namespace diffusion_internal

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// splitmix64: independent seeds for the streams of one job.
uint64_t MixSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

absl::Status ValidateOptions(const DiffusionOptions& o, bool kfold) {
  auto bad = [](const char* field, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("DiffusionOptions.", field, ": ", what));
  };
  if (o.hidden <= 0) return bad("hidden", absl::StrCat("must be > 0, got ", o.hidden));
  if (o.depth <= 0) return bad("depth", absl::StrCat("must be > 0, got ", o.depth));
  if (o.heads <= 0) return bad("heads", absl::StrCat("must be > 0, got ", o.heads));
  if (o.hidden % o.heads != 0)
    return bad("heads", absl::StrCat("must divide hidden (", o.hidden, "), got ", o.heads));
  if (!(o.mlp_ratio > 0) || !std::isfinite(o.mlp_ratio) ||
      static_cast<int64_t>(2 * o.hidden * o.mlp_ratio) < 1)
    return bad("mlp_ratio", "must be > 0 and give an MLP width >= 1");
  if (o.timesteps < 2) return bad("timesteps", absl::StrCat("must be >= 2, got ", o.timesteps));
  if (o.sample_steps < 0 || o.sample_steps > o.timesteps)
    return bad("sample_steps", absl::StrCat("must be in [0, timesteps], got ", o.sample_steps));
  if (kfold && o.folds < 2) return bad("folds", absl::StrCat("must be >= 2, got ", o.folds));
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    return bad("temperature", "must be a finite value >= 0");
  if (o.batch_size <= 0) return bad("batch_size", absl::StrCat("must be > 0, got ", o.batch_size));
  if (o.max_epochs <= 0) return bad("max_epochs", absl::StrCat("must be > 0, got ", o.max_epochs));
  if (o.patience < 0) return bad("patience", "must be >= 0 (0 disables early stopping)");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) return bad("lr", "must be a finite value > 0");
  if (o.lr_step <= 0) return bad("lr_step", absl::StrCat("must be > 0, got ", o.lr_step));
  if (!(o.lr_gamma > 0) || !std::isfinite(o.lr_gamma)) return bad("lr_gamma", "must be > 0");
  if (!(o.grad_clip >= 0) || !std::isfinite(o.grad_clip))
    return bad("grad_clip", "must be >= 0 (0 disables clipping)");
  return absl::OkStatus();
}

// Checks a matrix argument and returns it as contiguous float32 on the CPU.
absl::StatusOr<torch::Tensor> CheckMatrix(const torch::Tensor& m, const char* name) {
  if (!m.defined()) return absl::InvalidArgumentError(absl::StrCat(name, ": tensor is undefined"));
  if (m.dim() != 2)
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a 2-D spots x features matrix, got ",
                                                   m.dim(), " dimensions"));
  if (m.size(0) == 0 || m.size(1) == 0)
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": empty matrix (", m.size(0), " x ", m.size(1), ")"));
  if (m.is_complex() || m.scalar_type() == torch::kBool)
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected real numbers"));
  auto out = m.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  if (!torch::isfinite(out).all().item<bool>())
    return absl::InvalidArgumentError(absl::StrCat(name, ": contains NaN or infinite values"));
  return out;
}

void FitScaling(TrainedDenoiser& m, const torch::Tensor& low, const torch::Tensor& high) {
  auto mx = std::get<0>(low.max(0, true)), mn = std::get<0>(low.min(0, true));
  m.low_center = (mx + mn) / 2;
  auto half = (mx - mn) / 2;
  m.low_half_range = torch::where(half > 1e-12, half, torch::ones_like(half));
  m.high_mean = high.mean(0, true);
  auto sd = high.std(0, /*unbiased=*/false, /*keepdim=*/true);
  m.high_std = torch::where(sd > 1e-12, sd, torch::ones_like(sd));
}

torch::Tensor ScaleLow(const TrainedDenoiser& m, const torch::Tensor& low) {
  return (low - m.low_center) / m.low_half_range;
}
torch::Tensor UnscaleLow(const TrainedDenoiser& m, const torch::Tensor& x) {
  return x * m.low_half_range + m.low_center;
}
torch::Tensor ScaleHigh(const TrainedDenoiser& m, const torch::Tensor& high) {
  return (high - m.high_mean) / m.high_std;
}

Dit MakeNet(const DitConfig& config, uint64_t seed, const torch::Device& device) {
  Dit net(config);
  net->Initialize(at::detail::createCPUGenerator(seed));
  net->to(device);
  return net;
}

DitConfig ConfigFor(const DiffusionOptions& o, int64_t d, int64_t c) {
  DitConfig config;
  config.input_dim = d;
  config.cond_dim = c;
  config.hidden = o.hidden;
  config.depth = o.depth;
  config.heads = o.heads;
  config.mlp_ratio = o.mlp_ratio;
  return config;
}

// The condition fed to MLP(cond): per spot, or one mean row for the whole set.
torch::Tensor CondFor(const DiffusionOptions& o, const torch::Tensor& high_scaled) {
  return o.cond_per_spot ? high_scaled : high_scaled.mean(0, true);
}

// Epsilon-prediction DDPM training on scaled rows (already on `device`).
absl::Status TrainNet(TrainedDenoiser& m, const torch::Tensor& x0, const torch::Tensor& xhat,
                      const torch::Tensor& cond, const CosineSchedule& schedule,
                      const torch::Device& device, uint64_t seed, const std::string& stage,
                      const ProgressSink& progress, const CancelToken* cancel,
                      std::vector<double>* losses) {
  const auto& o = m.options;
  auto gen = at::detail::createCPUGenerator(seed);
  auto sab = schedule.sqrt_alpha_bar.to(device);
  auto s1mab = schedule.sqrt_one_minus_alpha_bar.to(device);
  const int64_t n = x0.size(0), d = x0.size(1);
  const bool per_spot = cond.size(0) == n && o.cond_per_spot;
  const bool bf16 = o.bf16_autocast && device.is_cuda();
  m.net->train();
  torch::optim::AdamW opt(m.net->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(0));
  torch::optim::StepLR lr_decay(opt, static_cast<unsigned>(o.lr_step), o.lr_gamma);
  double best = std::numeric_limits<double>::infinity();
  int64_t since_best = 0;
  const auto start = Clock::now();
  for (int64_t epoch = 0; epoch < o.max_epochs; ++epoch) {
    auto perm = torch::randperm(n, gen, torch::kLong);
    // The epoch's loss is summed on the device (in double, as the host sum was)
    // and read once per epoch: no host-device sync per minibatch.
    torch::Tensor sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    int64_t batches = 0;
    for (int64_t b0 = 0; b0 < n; b0 += o.batch_size) {
      auto idx_cpu = perm.slice(0, b0, std::min(n, b0 + o.batch_size));
      const int64_t b = idx_cpu.size(0);
      // Drawn on the host (the same numbers on every device); copied without
      // waiting for the GPU (a blocking copy would synchronise the stream).
      auto idx = idx_cpu.to(device, /*non_blocking=*/true);
      auto t = torch::randint(1, schedule.T, {b}, gen, torch::kLong).to(device, /*non_blocking=*/true);
      auto eps = torch::randn({b, d}, gen, torch::kFloat32).to(device, /*non_blocking=*/true);
      auto xb = x0.index_select(0, idx);
      auto xt = sab.index_select(0, t).unsqueeze(1) * xb + s1mab.index_select(0, t).unsqueeze(1) * eps;
      auto xh = xhat.index_select(0, idx);
      auto cb = per_spot ? cond.index_select(0, idx) : cond;
      torch::Tensor pred;
      {
        CudaBf16AutocastScope autocast(bf16);
        pred = m.net->forward(xt, xh, t, cb);
      }
      auto loss = torch::mse_loss(pred.to(torch::kFloat32), eps);
      opt.zero_grad();
      loss.backward();
      if (o.grad_clip > 0) diffusion_internal::ClipGradNormOnDevice(m.net->parameters(), o.grad_clip);
      opt.step();
      sum += loss.detach().to(torch::kFloat64);
      ++batches;
    }
    lr_decay.step();
    const double epoch_loss = sum.item<double>() / static_cast<double>(batches);
    if (!std::isfinite(epoch_loss))
      return absl::InternalError(absl::StrCat(stage, ": training loss became non-finite at epoch ",
                                              epoch + 1, " (try a smaller lr)"));
    losses->push_back(epoch_loss);
    ProgressEvent ev;
    ev.stage = stage;
    ev.step = epoch + 1;
    ev.total_steps = o.max_epochs;
    ev.loss = epoch_loss;
    ev.eta_seconds = Seconds(start) / (epoch + 1) * static_cast<double>(o.max_epochs - epoch - 1);
    if (ReportAndCheckCancel(progress, cancel, ev))
      return absl::CancelledError(absl::StrCat(stage, ": cancelled at epoch ", epoch + 1));
    if (epoch_loss < best) {
      best = epoch_loss;
      since_best = 0;
    } else if (o.patience > 0 && ++since_best >= o.patience) {
      break;
    }
  }
  return absl::OkStatus();
}

// Generates scaled rows for `xhat` (M x c, on device) from pure noise, in
// chunks of batch_size spots that attend to each other. Returns M x d on CPU.
absl::StatusOr<torch::Tensor> SampleNet(const TrainedDenoiser& m, const torch::Tensor& xhat,
                                        const torch::Tensor& cond, const CosineSchedule& schedule,
                                        const torch::Device& device, uint64_t seed,
                                        const std::string& stage, const ProgressSink& progress,
                                        const CancelToken* cancel) {
  const auto& o = m.options;
  torch::NoGradGuard no_grad;
  Dit net = m.net;  // the holder shares the module; sampling only reads it
  net->eval();
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t n = xhat.size(0), d = m.config.input_dim;
  const bool per_spot = cond.size(0) == n && o.cond_per_spot;
  const bool bf16 = o.bf16_autocast && device.is_cuda();
  auto value = [](const torch::Tensor& v) {
    return std::vector<double>(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
  };
  const auto ab = value(schedule.alpha_bar), inv = value(schedule.sqrt_inv_alpha_bar),
             invm1 = value(schedule.sqrt_inv_alpha_bar_minus_one), c1 = value(schedule.posterior_coef1),
             c2 = value(schedule.posterior_coef2), var = value(schedule.posterior_variance);
  std::vector<int64_t> steps;
  if (o.sampler == DiffusionSampler::kDdim) {
    steps = diffusion_internal::DdimTimesteps(schedule.T, o.sample_steps > 0 ? o.sample_steps : 50);
  } else {
    for (int64_t t = schedule.T - 1; t >= 0; --t) steps.push_back(t);
  }
  const int64_t chunks = (n + o.batch_size - 1) / o.batch_size;
  std::vector<torch::Tensor> out;
  int64_t done_steps = 0;
  const auto start = Clock::now();
  for (int64_t ci = 0; ci < chunks; ++ci) {
    const int64_t b0 = ci * o.batch_size, b1 = std::min(n, b0 + o.batch_size), b = b1 - b0;
    auto xh = xhat.slice(0, b0, b1);
    auto cb = per_spot ? cond.slice(0, b0, b1) : cond;
    auto x = (o.temperature * torch::randn({b, d}, gen, torch::kFloat32)).to(device, /*non_blocking=*/true);
    for (size_t i = 0; i < steps.size(); ++i) {
      const int64_t t = steps[i];
      auto tt = torch::full({b}, t, torch::TensorOptions().dtype(torch::kLong).device(device));
      torch::Tensor eps;
      {
        CudaBf16AutocastScope autocast(bf16);
        eps = net->forward(x, xh, tt, cb).to(torch::kFloat32);
      }
      if (o.sampler == DiffusionSampler::kDdim) {
        // Deterministic DDIM (eta = 0); eps is recomputed from the clipped x0.
        const double a = ab[t], a_prev = i + 1 < steps.size() ? ab[steps[i + 1]] : 1.0;
        auto x0 = ((x - std::sqrt(1 - a) * eps) / std::sqrt(a)).clamp(-1, 1);
        auto eps2 = (x - std::sqrt(a) * x0) / std::sqrt(1 - a);
        x = std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev) * eps2;
      } else {
        // Ancestral DDPM step through the posterior q(x_{t-1} | x_t, x0_hat).
        auto x0 = (inv[t] * x - invm1[t] * eps).clamp(-1, 1);
        x = c1[t] * x0 + c2[t] * x;
        if (t > 0) {
          x = x + (o.temperature * std::sqrt(var[t])) *
                      torch::randn({b, d}, gen, torch::kFloat32).to(device, /*non_blocking=*/true);
        }
      }
      if (++done_steps % 50 == 0 && cancel != nullptr && cancel->cancelled())
        return absl::CancelledError(absl::StrCat(stage, ": cancelled while sampling"));
    }
    out.push_back(x);  // stays on the device: one copy to the host at the end, no sync per chunk
    ProgressEvent ev;
    ev.stage = stage;
    ev.step = ci + 1;
    ev.total_steps = chunks;
    ev.loss = std::numeric_limits<double>::quiet_NaN();
    ev.eta_seconds = Seconds(start) / (ci + 1) * static_cast<double>(chunks - ci - 1);
    ev.message = absl::StrCat("sampling ", b, " spots, ", steps.size(), " ",
                              DiffusionSamplerName(o.sampler), " steps");
    if (ReportAndCheckCancel(progress, cancel, ev))
      return absl::CancelledError(absl::StrCat(stage, ": cancelled while sampling"));
  }
  return torch::cat(out, 0).to(torch::kCPU);
}

torch::Tensor IndexTensor(const std::vector<int64_t>& rows) {
  return torch::tensor(rows, torch::kLong);
}

absl::StatusOr<DenoiseResult> DenoiseKFoldImpl(const torch::Tensor& low_in, const torch::Tensor& high_in,
                                               const DiffusionOptions& options,
                                               const torch::Device& device, const ProgressSink& progress,
                                               const CancelToken* cancel) {
  CANDIES_RETURN_IF_ERROR(ValidateOptions(options, /*kfold=*/true));
  CANDIES_ASSIGN_OR_RETURN(auto low, CheckMatrix(low_in, "low"));
  CANDIES_ASSIGN_OR_RETURN(auto high, CheckMatrix(high_in, "high"));
  const int64_t n = low.size(0);
  if (high.size(0) != n)
    return absl::InvalidArgumentError(absl::StrCat("high: has ", high.size(0),
                                                   " spots but low has ", n));
  if (n < 2 * options.folds)
    return absl::InvalidArgumentError(absl::StrCat("low: ", n, " spots is too few for folds=",
                                                   options.folds, " (need at least ", 2 * options.folds, ")"));
  TrainedDenoiser scaling;
  FitScaling(scaling, low, high);
  auto low_s = ScaleLow(scaling, low);
  auto high_s = ScaleHigh(scaling, high);
  // The authors' global condition is the mean of every spot's high-quality row.
  auto cond_all = CondFor(options, high_s);
  CosineSchedule schedule(options.timesteps);
  const auto split = diffusion_internal::KFoldSplit(n, options.folds, options.seed);

  DenoiseResult result;
  auto denoised = torch::zeros_like(low_s);
  for (int64_t f = 0; f < options.folds; ++f) {
    const auto& heldout = split[f];
    std::vector<int64_t> train;
    for (int64_t g = 0; g < options.folds; ++g)
      if (g != f) train.insert(train.end(), split[g].begin(), split[g].end());
    std::sort(train.begin(), train.end());
    if (auto& hook = diffusion_internal::Hook(); hook) hook(f, train, heldout);
    const std::string stage = absl::StrCat("denoise_fold", f + 1);
    auto tr = IndexTensor(train), ho = IndexTensor(heldout);

    TrainedDenoiser m = scaling;
    m.options = options;
    m.config = ConfigFor(options, low.size(1), high.size(1));
    m.net = MakeNet(m.config, MixSeed(options.seed, 3 * f), device);
    auto t0 = Clock::now();
    result.fold_losses.emplace_back();
    auto cond_tr = options.cond_per_spot ? cond_all.index_select(0, tr).to(device) : cond_all.to(device);
    CANDIES_RETURN_IF_ERROR(TrainNet(m, low_s.index_select(0, tr).to(device),
                                     high_s.index_select(0, tr).to(device), cond_tr, schedule, device,
                                     MixSeed(options.seed, 3 * f + 1), stage, progress, cancel,
                                     &result.fold_losses.back()));
    result.train_seconds += Seconds(t0);
    t0 = Clock::now();
    auto cond_ho = options.cond_per_spot ? cond_all.index_select(0, ho).to(device) : cond_all.to(device);
    CANDIES_ASSIGN_OR_RETURN(auto sampled,
                             SampleNet(m, high_s.index_select(0, ho).to(device), cond_ho, schedule, device,
                                       MixSeed(options.seed, 3 * f + 2), stage, progress, cancel));
    denoised.index_copy_(0, ho, sampled);
    result.sample_seconds += Seconds(t0);
    if (f == 0) result.model = std::make_shared<TrainedDenoiser>(m);
  }
  if (options.center_folds) {
    // Each fold's model places its rows with an offset of its own (a different
    // network, never trained on these spots); with the narrow conditional-mean
    // sampler that offset alone can split every domain by fold. The folds are
    // random thirds of the same section, so their true means agree: move each
    // fold's rows to the mean of all generated rows.
    auto overall = denoised.mean(0, true);
    for (const auto& heldout : split) {
      auto ho = IndexTensor(heldout);
      auto rows = denoised.index_select(0, ho);
      denoised.index_copy_(0, ho, rows - rows.mean(0, true) + overall);
    }
  }
  result.denoised = UnscaleLow(scaling, denoised);
  return result;
}

absl::StatusOr<std::shared_ptr<TrainedDenoiser>> TrainDenoiserImpl(
    const torch::Tensor& low_in, const torch::Tensor& high_in, const DiffusionOptions& options,
    const torch::Device& device, const ProgressSink& progress, const CancelToken* cancel) {
  CANDIES_RETURN_IF_ERROR(ValidateOptions(options, /*kfold=*/false));
  CANDIES_ASSIGN_OR_RETURN(auto low, CheckMatrix(low_in, "low"));
  CANDIES_ASSIGN_OR_RETURN(auto high, CheckMatrix(high_in, "high"));
  if (high.size(0) != low.size(0))
    return absl::InvalidArgumentError(absl::StrCat("high: has ", high.size(0),
                                                   " spots but low has ", low.size(0)));
  if (low.size(0) < 2) return absl::InvalidArgumentError("low: need at least 2 spots");
  auto m = std::make_shared<TrainedDenoiser>();
  FitScaling(*m, low, high);
  m->options = options;
  m->config = ConfigFor(options, low.size(1), high.size(1));
  m->net = MakeNet(m->config, MixSeed(options.seed, 1000), device);
  auto high_s = ScaleHigh(*m, high);
  CosineSchedule schedule(options.timesteps);
  std::vector<double> losses;
  CANDIES_RETURN_IF_ERROR(TrainNet(*m, ScaleLow(*m, low).to(device), high_s.to(device),
                                   CondFor(options, high_s).to(device), schedule, device,
                                   MixSeed(options.seed, 1001), "denoise_train", progress, cancel,
                                   &losses));
  return m;
}

absl::StatusOr<torch::Tensor> ApplyDenoiserImpl(const TrainedDenoiser& m, const torch::Tensor& high_in,
                                                const torch::Device& device, const ProgressSink& progress,
                                                const CancelToken* cancel) {
  CANDIES_ASSIGN_OR_RETURN(auto high, CheckMatrix(high_in, "high"));
  if (high.size(1) != m.config.cond_dim)
    return absl::InvalidArgumentError(absl::StrCat("high: has ", high.size(1),
                                                   " features but the denoiser was trained on ",
                                                   m.config.cond_dim));
  Dit net = m.net;
  net->to(device);
  auto high_s = ScaleHigh(m, high);
  CosineSchedule schedule(m.options.timesteps);
  CANDIES_ASSIGN_OR_RETURN(auto sampled,
                           SampleNet(m, high_s.to(device), CondFor(m.options, high_s).to(device), schedule,
                                     device, MixSeed(m.options.seed, 1002), "denoise_apply", progress,
                                     cancel));
  return UnscaleLow(m, sampled);
}

// Torch throws c10::Error / std::exception; nothing leaks past the public API.
template <typename F>
auto Guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

constexpr char kNetFile[] = "dit.pt";
constexpr char kMetaFile[] = "denoiser.txt";
constexpr char kFormat[] = "candies-denoiser-1";

std::string Row(const torch::Tensor& v) {
  std::string s;
  auto c = v.contiguous();
  const float* p = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) absl::StrAppend(&s, i ? " " : "", absl::StrFormat("%.9g", p[i]));
  return s;
}

}  // namespace

absl::StatusOr<DenoiseResult> DenoiseKFold(const torch::Tensor& low, const torch::Tensor& high,
                                           const DiffusionOptions& options, const torch::Device& device,
                                           const ProgressSink& progress, const CancelToken* cancel) {
  return Guarded("DenoiseKFold", [&] { return DenoiseKFoldImpl(low, high, options, device, progress, cancel); });
}

absl::StatusOr<std::shared_ptr<TrainedDenoiser>> TrainDenoiser(
    const torch::Tensor& low, const torch::Tensor& high, const DiffusionOptions& options,
    const torch::Device& device, const ProgressSink& progress, const CancelToken* cancel) {
  return Guarded("TrainDenoiser",
                 [&] { return TrainDenoiserImpl(low, high, options, device, progress, cancel); });
}

absl::StatusOr<torch::Tensor> ApplyDenoiser(const TrainedDenoiser& model, const torch::Tensor& high,
                                            const torch::Device& device, const ProgressSink& progress,
                                            const CancelToken* cancel) {
  return Guarded("ApplyDenoiser", [&] { return ApplyDenoiserImpl(model, high, device, progress, cancel); });
}

const DiffusionOptions& DenoiserOptions(const TrainedDenoiser& model) { return model.options; }

absl::Status SaveDenoiser(const TrainedDenoiser& model, const std::string& dir) {
  return Guarded("SaveDenoiser", [&]() -> absl::Status {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("SaveDenoiser: cannot create ", dir, ": ", ec.message()));
    const auto dir_path = std::filesystem::path(dir);
    // Save a CPU copy so that a model on CUDA loads on any device.
    Dit cpu(model.config);
    {
      torch::NoGradGuard no_grad;
      auto src = model.net->named_parameters(), dst = cpu->named_parameters();
      for (auto& p : dst) p.value().copy_(src[p.key()]);
    }
    torch::save(cpu, (dir_path / kNetFile).string());
    const auto& o = model.options;
    std::ofstream meta(dir_path / kMetaFile);
    meta << "format " << kFormat << "\n"
         << "input_dim " << model.config.input_dim << "\ncond_dim " << model.config.cond_dim << "\n"
         << "hidden " << o.hidden << "\ndepth " << o.depth << "\nheads " << o.heads << "\n"
         << absl::StrFormat("mlp_ratio %.17g\n", o.mlp_ratio) << "timesteps " << o.timesteps << "\n"
         << "sampler " << DiffusionSamplerName(o.sampler) << "\nsample_steps " << o.sample_steps << "\n"
         << absl::StrFormat("temperature %.17g\n", o.temperature)
         << "folds " << o.folds << "\nbatch_size " << o.batch_size << "\nmax_epochs " << o.max_epochs << "\n"
         << "patience " << o.patience << "\n" << absl::StrFormat("lr %.17g\n", o.lr)
         << "lr_step " << o.lr_step << "\n" << absl::StrFormat("lr_gamma %.17g\n", o.lr_gamma)
         << absl::StrFormat("grad_clip %.17g\n", o.grad_clip) << "bf16_autocast " << o.bf16_autocast << "\n"
         << "seed " << o.seed << "\ncond_per_spot " << o.cond_per_spot << "\n"
         << "low_center " << Row(model.low_center) << "\nlow_half_range " << Row(model.low_half_range) << "\n"
         << "high_mean " << Row(model.high_mean) << "\nhigh_std " << Row(model.high_std) << "\n";
    meta.close();
    if (!meta) return absl::InternalError(absl::StrCat("SaveDenoiser: cannot write ", dir, "/", kMetaFile));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::shared_ptr<TrainedDenoiser>> LoadDenoiser(const std::string& dir,
                                                              const torch::Device& device) {
  return Guarded("LoadDenoiser", [&]() -> absl::StatusOr<std::shared_ptr<TrainedDenoiser>> {
    const auto dir_path = std::filesystem::path(dir);
    std::ifstream meta(dir_path / kMetaFile);
    if (!meta) return absl::NotFoundError(absl::StrCat("LoadDenoiser: no ", kMetaFile, " in ", dir));
    std::map<std::string, std::vector<std::string>> kv;
    std::string line;
    while (std::getline(meta, line)) {
      std::istringstream in(line);
      std::string key, v;
      in >> key;
      while (in >> v) kv[key].push_back(v);
    }
    auto field = [&](const char* key) -> absl::StatusOr<std::string> {
      auto it = kv.find(key);
      if (it == kv.end() || it->second.size() != 1)
        return absl::DataLossError(absl::StrCat("LoadDenoiser: ", kMetaFile, " lacks field ", key));
      return it->second[0];
    };
    CANDIES_ASSIGN_OR_RETURN(auto format, field("format"));
    if (format != kFormat)
      return absl::DataLossError(absl::StrCat("LoadDenoiser: unknown format ", format));
    auto m = std::make_shared<TrainedDenoiser>();
    auto& o = m->options;
    auto i64 = [&](const char* key, int64_t* out) -> absl::Status {
      CANDIES_ASSIGN_OR_RETURN(auto s, field(key));
      if (!absl::SimpleAtoi(s, out))
        return absl::DataLossError(absl::StrCat("LoadDenoiser: field ", key, " is not an integer: ", s));
      return absl::OkStatus();
    };
    auto f64 = [&](const char* key, double* out) -> absl::Status {
      CANDIES_ASSIGN_OR_RETURN(auto s, field(key));
      if (!absl::SimpleAtod(s, out))
        return absl::DataLossError(absl::StrCat("LoadDenoiser: field ", key, " is not a number: ", s));
      return absl::OkStatus();
    };
    int64_t d = 0, c = 0, bf16 = 0, per_spot = 1;
    CANDIES_RETURN_IF_ERROR(i64("input_dim", &d));
    CANDIES_RETURN_IF_ERROR(i64("cond_dim", &c));
    CANDIES_RETURN_IF_ERROR(i64("hidden", &o.hidden));
    CANDIES_RETURN_IF_ERROR(i64("depth", &o.depth));
    CANDIES_RETURN_IF_ERROR(i64("heads", &o.heads));
    CANDIES_RETURN_IF_ERROR(f64("mlp_ratio", &o.mlp_ratio));
    CANDIES_RETURN_IF_ERROR(i64("timesteps", &o.timesteps));
    CANDIES_ASSIGN_OR_RETURN(auto sampler, field("sampler"));
    CANDIES_ASSIGN_OR_RETURN(o.sampler, ParseDiffusionSampler(sampler));
    CANDIES_RETURN_IF_ERROR(i64("sample_steps", &o.sample_steps));
    CANDIES_RETURN_IF_ERROR(f64("temperature", &o.temperature));
    CANDIES_RETURN_IF_ERROR(i64("folds", &o.folds));
    CANDIES_RETURN_IF_ERROR(i64("batch_size", &o.batch_size));
    CANDIES_RETURN_IF_ERROR(i64("max_epochs", &o.max_epochs));
    CANDIES_RETURN_IF_ERROR(i64("patience", &o.patience));
    CANDIES_RETURN_IF_ERROR(f64("lr", &o.lr));
    CANDIES_RETURN_IF_ERROR(i64("lr_step", &o.lr_step));
    CANDIES_RETURN_IF_ERROR(f64("lr_gamma", &o.lr_gamma));
    CANDIES_RETURN_IF_ERROR(f64("grad_clip", &o.grad_clip));
    CANDIES_RETURN_IF_ERROR(i64("bf16_autocast", &bf16));
    CANDIES_ASSIGN_OR_RETURN(auto seed_text, field("seed"));
    if (!absl::SimpleAtoi(seed_text, &o.seed))
      return absl::DataLossError(absl::StrCat("LoadDenoiser: field seed is not an integer: ", seed_text));
    CANDIES_RETURN_IF_ERROR(i64("cond_per_spot", &per_spot));
    o.bf16_autocast = bf16 != 0;
    o.cond_per_spot = per_spot != 0;
    CANDIES_RETURN_IF_ERROR(ValidateOptions(o, /*kfold=*/false));
    if (d <= 0 || c <= 0) return absl::DataLossError("LoadDenoiser: bad input_dim / cond_dim");
    auto vec = [&](const char* key, int64_t len) -> absl::StatusOr<torch::Tensor> {
      auto it = kv.find(key);
      if (it == kv.end() || static_cast<int64_t>(it->second.size()) != len)
        return absl::DataLossError(absl::StrCat("LoadDenoiser: field ", key, " needs ", len, " values"));
      std::vector<float> v;
      for (const auto& s : it->second) {
        float x = 0;
        if (!absl::SimpleAtof(s, &x) || !std::isfinite(x))
          return absl::DataLossError(absl::StrCat("LoadDenoiser: field ", key, " has a bad value: ", s));
        v.push_back(x);
      }
      return torch::tensor(v, torch::kFloat32).reshape({1, len});
    };
    CANDIES_ASSIGN_OR_RETURN(m->low_center, vec("low_center", d));
    CANDIES_ASSIGN_OR_RETURN(m->low_half_range, vec("low_half_range", d));
    CANDIES_ASSIGN_OR_RETURN(m->high_mean, vec("high_mean", c));
    CANDIES_ASSIGN_OR_RETURN(m->high_std, vec("high_std", c));
    m->config = ConfigFor(o, d, c);
    m->net = Dit(m->config);
    const auto net_path = dir_path / kNetFile;
    if (!std::filesystem::exists(net_path))
      return absl::NotFoundError(absl::StrCat("LoadDenoiser: no ", kNetFile, " in ", dir));
    torch::load(m->net, net_path.string());
    m->net->to(device);
    return m;
  });
}

int64_t DenoiserBytes(const TrainedDenoiser& model) {
  int64_t bytes = 0;
  for (const auto& p : model.net->parameters()) bytes += p.numel() * p.element_size();
  for (const auto& b : model.net->buffers()) bytes += b.numel() * b.element_size();
  for (const auto* t : {&model.low_center, &model.low_half_range, &model.high_mean, &model.high_std})
    bytes += t->numel() * t->element_size();
  return bytes;
}

}  // namespace candies
