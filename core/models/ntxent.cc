#include "core/models/ntxent.h"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace candies {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t RowsPerBlock(const torch::Tensor& f, int64_t forced) {
  const int64_t rows = f.size(1);
  if (forced > 0) return std::min(forced, rows);
  const int64_t budget = f.is_cpu() ? kNtXentCpuBlockBytes : kNtXentDeviceBlockBytes;
  return std::clamp<int64_t>(budget / (rows * f.element_size()), 1, rows);
}

// Rows [r0, r0 + s.size(0)) of (f / t) f^T, self-similarities at -inf, into s.
void SimilarityBlock(const torch::Tensor& scaled, const torch::Tensor& f, int64_t r0,
                     torch::Tensor& s) {
  at::mm_out(s, scaled.narrow(0, r0, s.size(0)), f.t());
  s.diagonal(r0).fill_(-std::numeric_limits<double>::infinity());
}

class NtXentFunction : public torch::autograd::Function<NtXentFunction> {
 public:
  // f: M x 2N x d unit rows -> M losses; saves f and the M x 2N row log-sum-exps.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& f_in, double temperature,
                               int64_t block_rows) {
    TORCH_CHECK(f_in.dim() == 3 && f_in.size(1) >= 2 && f_in.size(1) % 2 == 0,
                "NT-Xent: f must be M x 2N x d with N >= 1, got ", f_in.sizes());
    const torch::Tensor f = f_in.contiguous();
    const int64_t m = f.size(0), rows = f.size(1);
    const int64_t b = RowsPerBlock(f, block_rows);
    const torch::Tensor scaled = f * (1.0 / temperature);
    torch::Tensor lse = at::empty({m, rows}, f.options());
    torch::Tensor buf = at::empty({b, rows}, f.options());
    for (int64_t k = 0; k < m; ++k) {
      for (int64_t r0 = 0; r0 < rows; r0 += b) {
        const int64_t len = std::min(b, rows - r0);
        torch::Tensor s = buf.narrow(0, 0, len);
        SimilarityBlock(scaled[k], f[k], r0, s);
        lse[k].narrow(0, r0, len).copy_(at::logsumexp(s, {1}));
      }
    }
    // The positive pair's logit: row i against row (i + N) mod 2N.
    const torch::Tensor pos = (scaled * f.roll({rows / 2}, {1})).sum(2);
    ctx->save_for_backward({f, lse});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["block_rows"] = b;
    return (lse - pos).mean(1);
  }

  // d loss_k / d f_k = (P f + P^T f - 2 f_partner) / (2N t), P the softmax over
  // each row without its diagonal: recomputed block by block from the saved
  // log-sum-exps, applied with two GEMMs per block.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor& g = grads[0];
    if (!g.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &f = saved[0], &lse = saved[1];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t b = ctx->saved_data["block_rows"].toInt();
    const int64_t m = f.size(0), rows = f.size(1);
    const torch::Tensor scaled = f * (1.0 / temperature);
    torch::Tensor df = at::zeros_like(f);
    torch::Tensor buf = at::empty({b, rows}, f.options());
    for (int64_t k = 0; k < m; ++k) {
      const torch::Tensor fk = f[k], sk = scaled[k], lk = lse[k];
      torch::Tensor dk = df[k];
      for (int64_t r0 = 0; r0 < rows; r0 += b) {
        const int64_t len = std::min(b, rows - r0);
        torch::Tensor s = buf.narrow(0, 0, len);
        SimilarityBlock(sk, fk, r0, s);
        s.sub_(lk.narrow(0, r0, len).unsqueeze(1)).exp_();  // softmax rows, diagonal 0
        dk.narrow(0, r0, len).addmm_(s, fk);
        dk.addmm_(s.t(), fk.narrow(0, r0, len));
      }
    }
    df.sub_(f.roll({rows / 2}, {1}), 2.0);
    df.mul_((g * (1.0 / (static_cast<double>(rows) * temperature))).view({m, 1, 1}));
    return {df, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor FusedNtXent(const torch::Tensor& f, double temperature, int64_t block_rows) {
  return NtXentFunction::apply(f, temperature, block_rows);
}

}  // namespace candies
