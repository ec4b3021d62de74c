// The DiT noise predictor of the conditional diffusion denoiser (private to
// core/models; see ALGORITHM.md section 2.3 and docs/DIFFUSION.md).
//
// One token per spot: [Linear(x_t), Linear(x_hat)] of width 2*hidden. The spots
// of a minibatch are the sequence: multi-head self-attention runs across spots.
// Blocks are adaLN-Zero, conditioned on c = TimestepEmbed(t) + MLP(cond).
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace candies {

struct DitConfig {
  int64_t input_dim = 0;  // d: width of x_t (the low-quality embedding)
  int64_t cond_dim = 0;   // c: width of x_hat / cond (the high-quality embedding)
  int64_t hidden = 512;   // token width is 2 * hidden
  int64_t depth = 6;
  int64_t heads = 16;     // must divide 2 * hidden
  double mlp_ratio = 4.0;
  int64_t frequency_dim = 256;  // sinusoidal timestep embedding width
};

// Sinusoidal embedding of (possibly fractional) timesteps t (B) -> B x dim:
// [cos(t f_i), sin(t f_i)], f_i = exp(-ln(10000) i / (dim/2)).
torch::Tensor TimestepEmbedding(const torch::Tensor& t, int64_t dim);

class DitBlockImpl : public torch::nn::Module {
 public:
  DitBlockImpl(int64_t width, int64_t heads, double mlp_ratio);
  // x: B x W tokens, c: B x W (or 1 x W) conditioning.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);

  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr}, ada{nullptr};

 private:
  int64_t width_, heads_;
};
TORCH_MODULE(DitBlock);

class DitImpl : public torch::nn::Module {
 public:
  explicit DitImpl(const DitConfig& config);
  // x_t: B x d, x_hat: B x c, t: B (int64), cond: B x c or 1 x c -> B x d.
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& x_hat,
                        const torch::Tensor& t, const torch::Tensor& cond);
  // The authors' initialisation (xavier-uniform Linear weights, zero biases,
  // N(0, 0.02) timestep MLP, zero adaLN modulations and output layer), drawn
  // from `generator` (a CPU generator; call before moving to a device).
  void Initialize(at::Generator generator);
  const DitConfig& config() const { return config_; }

  torch::nn::Linear in_layer{nullptr}, x_in_layer{nullptr};
  torch::nn::Linear time_fc1{nullptr}, time_fc2{nullptr};
  torch::nn::Linear cond_fc1{nullptr}, cond_fc2{nullptr}, cond_fc3{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear final_ada{nullptr}, final_linear{nullptr};

 private:
  DitConfig config_;
};
TORCH_MODULE(Dit);

}  // namespace candies
