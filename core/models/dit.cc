#include "core/models/dit.h"

#include <cmath>

#include <torch/torch.h>

namespace candies {
namespace {

namespace F = torch::nn::functional;

// LayerNorm without affine parameters, eps 1e-4 (as the authors' DiT).
torch::Tensor Norm(const torch::Tensor& x) {
  return F::layer_norm(x, F::LayerNormFuncOptions({x.size(-1)}).eps(1e-4));
}

torch::Tensor Modulate(const torch::Tensor& x, const torch::Tensor& shift,
                       const torch::Tensor& scale) {
  return x * (1 + scale) + shift;
}

void XavierUniform(torch::nn::Linear& layer, at::Generator& gen) {
  const auto& w = layer->weight;
  const double bound = std::sqrt(6.0 / static_cast<double>(w.size(0) + w.size(1)));
  w.uniform_(-bound, bound, gen);
  if (layer->bias.defined()) layer->bias.zero_();
}

void Zero(torch::nn::Linear& layer) {
  layer->weight.zero_();
  if (layer->bias.defined()) layer->bias.zero_();
}

}  // namespace

torch::Tensor TimestepEmbedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  auto freqs = torch::exp(-std::log(10000.0) * torch::arange(half, opts) / static_cast<double>(half));
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2 != 0) emb = torch::cat({emb, torch::zeros_like(emb.slice(1, 0, 1))}, -1);
  return emb;
}

DitBlockImpl::DitBlockImpl(int64_t width, int64_t heads, double mlp_ratio)
    : width_(width), heads_(heads) {
  const auto mlp_hidden = static_cast<int64_t>(static_cast<double>(width) * mlp_ratio);
  qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  proj = register_module("proj", torch::nn::Linear(width, width));
  fc1 = register_module("fc1", torch::nn::Linear(width, mlp_hidden));
  fc2 = register_module("fc2", torch::nn::Linear(mlp_hidden, width));
  ada = register_module("ada", torch::nn::Linear(width, 6 * width));
}

torch::Tensor DitBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto mod = ada(torch::silu(c)).chunk(6, 1);
  // Attention across the spots of the minibatch: the B tokens are the sequence.
  const int64_t b = x.size(0);
  const int64_t head_dim = width_ / heads_;
  auto h = Modulate(Norm(x), mod[0], mod[1]);
  auto qkv_t = qkv(h).reshape({b, 3, heads_, head_dim}).permute({1, 2, 0, 3});  // 3 x H x B x Dh
  auto q = qkv_t[0], k = qkv_t[1], v = qkv_t[2];
  auto attn = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim)), -1);
  auto out = torch::matmul(attn, v).transpose(0, 1).reshape({b, width_});  // B x W
  auto y = x + mod[2] * proj(out);
  auto m = fc2(torch::gelu(fc1(Modulate(Norm(y), mod[3], mod[4]))));
  return y + mod[5] * m;
}

DitImpl::DitImpl(const DitConfig& config) : config_(config) {
  const int64_t w = 2 * config.hidden;
  in_layer = register_module("in_layer", torch::nn::Linear(config.input_dim, config.hidden));
  x_in_layer = register_module("x_in_layer", torch::nn::Linear(config.cond_dim, config.hidden));
  time_fc1 = register_module("time_fc1", torch::nn::Linear(config.frequency_dim, w));
  time_fc2 = register_module("time_fc2", torch::nn::Linear(w, w));
  // The authors' condition MLP: c -> hidden -> hidden -> 2*hidden with ReLU.
  cond_fc1 = register_module("cond_fc1", torch::nn::Linear(config.cond_dim, config.hidden));
  cond_fc2 = register_module("cond_fc2", torch::nn::Linear(config.hidden, config.hidden));
  cond_fc3 = register_module("cond_fc3", torch::nn::Linear(config.hidden, w));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) blocks->push_back(DitBlock(w, config.heads, config.mlp_ratio));
  final_ada = register_module("final_ada", torch::nn::Linear(w, 2 * w));
  final_linear = register_module("final_linear", torch::nn::Linear(w, config.input_dim));
}

void DitImpl::Initialize(at::Generator generator) {
  torch::NoGradGuard no_grad;
  for (auto* layer : {&in_layer, &x_in_layer, &cond_fc1, &cond_fc2, &cond_fc3}) XavierUniform(*layer, generator);
  for (auto* layer : {&time_fc1, &time_fc2}) {
    (*layer)->weight.normal_(0.0, 0.02, generator);
    (*layer)->bias.zero_();
  }
  for (const auto& module : *blocks) {
    auto block = std::dynamic_pointer_cast<DitBlockImpl>(module);
    for (auto* layer : {&block->qkv, &block->proj, &block->fc1, &block->fc2}) XavierUniform(*layer, generator);
    Zero(block->ada);  // adaLN-Zero: every block starts as the identity
  }
  Zero(final_ada);
  Zero(final_linear);
}

torch::Tensor DitImpl::forward(const torch::Tensor& x_t, const torch::Tensor& x_hat,
                               const torch::Tensor& t, const torch::Tensor& cond) {
  auto x = torch::cat({in_layer(x_t), x_in_layer(x_hat)}, 1);
  auto temb = time_fc2(torch::silu(time_fc1(TimestepEmbedding(t, config_.frequency_dim))));
  auto cemb = cond_fc3(torch::relu(cond_fc2(torch::relu(cond_fc1(cond)))));
  auto c = temb + cemb;
  for (const auto& module : *blocks) x = module->as<DitBlockImpl>()->forward(x, c);
  auto mod = final_ada(torch::silu(c)).chunk(2, 1);
  return final_linear(Modulate(Norm(x), mod[0], mod[1]));
}

}  // namespace candies
