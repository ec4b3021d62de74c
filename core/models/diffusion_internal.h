// Internals of the diffusion denoiser, exposed for tests/diffusion and
// bench/speed only (not an interface for other areas).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/types.h>

#include "core/models/diffusion.h"

namespace candies {
namespace diffusion_internal {

// Cosine schedule (Nichol & Dhariwal): alpha_bar(u) = cos((u + s)/(1 + s) * pi/2)^2,
// beta_t = min(1 - alpha_bar((t+1)/T)/alpha_bar(t/T), max_beta), t = 0..T-1.
// Computed in float64, stored float32 on the CPU.
struct CosineSchedule {
  explicit CosineSchedule(int64_t timesteps, double s = 0.008, double max_beta = 0.999);
  int64_t T;
  torch::Tensor betas, alphas, alpha_bar, alpha_bar_prev;
  torch::Tensor sqrt_alpha_bar, sqrt_one_minus_alpha_bar;
  torch::Tensor sqrt_inv_alpha_bar, sqrt_inv_alpha_bar_minus_one;
  torch::Tensor posterior_coef1, posterior_coef2, posterior_variance;
};

// q(x_t | x_0): sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (row-wise t).
torch::Tensor AddNoise(const CosineSchedule& schedule, const torch::Tensor& x0,
                       const torch::Tensor& eps, const torch::Tensor& t);

// Scales the gradients of `parameters` so that their joint L2 norm is at most
// max_norm: the arithmetic of torch::nn::utils::clip_grad_norm_ (same results,
// bit for bit), without its final .item(), which is a host-device sync per call.
void ClipGradNormOnDevice(const std::vector<torch::Tensor>& parameters, double max_norm);

// Held-out index lists of a deterministic shuffled k-fold split of n spots
// (contiguous chunks of a seeded permutation; the first n % k folds get one more).
std::vector<std::vector<int64_t>> KFoldSplit(int64_t n, int64_t folds, uint64_t seed);

// DDIM timesteps: `steps` evenly spaced in [0, T-1], descending, unique.
std::vector<int64_t> DdimTimesteps(int64_t timesteps, int64_t steps);

// Test hook: called by DenoiseKFold before training each fold with the rows it
// trains on and the rows it generates. Not thread-safe; tests only.
using FoldHook = std::function<void(int64_t fold, const std::vector<int64_t>& train_rows,
                                    const std::vector<int64_t>& heldout_rows)>;
void SetFoldHook(FoldHook hook);

// Changes how an already trained denoiser samples (bench/tests: one training,
// several samplers).
void SetSampling(TrainedDenoiser& model, DiffusionSampler sampler, int64_t sample_steps,
                 double temperature = 1.0);

}  // namespace diffusion_internal
}  // namespace candies
