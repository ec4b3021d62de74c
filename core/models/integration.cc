#include "core/models/integration.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/cluster/cluster.h"
#include "core/util/status_macros.h"

namespace candies {

torch::Tensor NtXent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature) {
  const int64_t n = z1.size(0);
  auto f = torch::nn::functional::normalize(
      torch::cat({z1, z2}, 0), torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto logits = torch::mm(f, f.t()) / temperature;  // 2N x 2N
  // Exclude each anchor's self-similarity from the softmax denominator.
  auto eye = torch::eye(2 * n, torch::TensorOptions().dtype(torch::kBool).device(f.device()));
  logits = logits.masked_fill(eye, -std::numeric_limits<float>::infinity());
  auto idx = torch::arange(2 * n, torch::TensorOptions().dtype(torch::kLong).device(f.device()));
  auto partner = torch::remainder(idx + n, 2 * n);
  return torch::nn::functional::cross_entropy(logits, partner);
}

torch::Tensor NtXentMinibatched(const torch::Tensor& z1, const torch::Tensor& z2,
                                double temperature, int64_t batch, const torch::Tensor& perm) {
  const int64_t n = z1.size(0);
  if (batch >= n) return NtXent(z1, z2, temperature);
  auto p = perm.to(z1.device(), /*non_blocking=*/true);  // no stream sync for a host permutation
  torch::Tensor total;
  int64_t chunks = 0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t len = std::min(batch, n - start);
    if (len < 2 && chunks > 0) break;  // a single spot has no negatives
    auto ids = p.narrow(0, start, len);
    auto l = NtXent(z1.index_select(0, ids), z2.index_select(0, ids), temperature);
    total = total.defined() ? total + l : l;
    ++chunks;
  }
  return total / static_cast<double>(chunks);
}

namespace {

// One linear GCN layer A X W (the authors' Encoder/Decoder), xavier-initialised.
struct GcnImpl : torch::nn::Module {
  GcnImpl(int64_t in, int64_t out) {
    weight = register_parameter("weight", torch::empty({in, out}));
    torch::nn::init::xavier_uniform_(weight);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& adj) {
    return torch::mm(adj, torch::mm(x, weight));
  }
  torch::Tensor weight;
};
TORCH_MODULE(Gcn);

struct IntegrationNetImpl : torch::nn::Module {
  IntegrationNetImpl(int64_t d1, int64_t d2, int64_t out)
      : enc1(register_module("enc1", Gcn(d1, out))),
        enc2(register_module("enc2", Gcn(d2, out))),
        dec1(register_module("dec1", Gcn(out, d1))),
        dec2(register_module("dec2", Gcn(out, d2))) {
    w_omega = register_parameter("w_omega", torch::empty({out, out}));
    u_omega = register_parameter("u_omega", torch::empty({out, 1}));
    torch::nn::init::xavier_uniform_(w_omega);
    torch::nn::init::xavier_uniform_(u_omega);
  }
  // Attention over the two views per spot: returns (H, alpha N x 2).
  std::pair<torch::Tensor, torch::Tensor> Fuse(const torch::Tensor& hs, const torch::Tensor& hf) {
    auto emb = torch::stack({hs, hf}, 1);                        // N x 2 x out
    auto v = torch::tanh(torch::matmul(emb, w_omega));          // N x 2 x out
    auto score = torch::matmul(v, u_omega).squeeze(-1) + 1e-6;  // N x 2
    auto alpha = torch::softmax(score, 1);
    return {(emb * alpha.unsqueeze(-1)).sum(1), alpha};
  }
  Gcn enc1, enc2, dec1, dec2;
  torch::Tensor w_omega, u_omega;
};
TORCH_MODULE(IntegrationNet);

struct Member {
  torch::Tensor joint, attention;  // on the device
  std::vector<double> losses;
};

// One network, trained from the current state of the global generator.
// `first_step` numbers its epochs within the whole ensemble's progress.
absl::StatusOr<Member> TrainMember(const torch::Tensor& a1, const torch::Tensor& a2,
                                   const IntegrationGraphs& g, const IntegrationOptions& options,
                                   const torch::Device& device, int64_t first_step,
                                   int64_t total_steps, std::chrono::steady_clock::time_point t0,
                                   const ProgressSink& progress, const CancelToken* cancel) {
  const int64_t n = a1.size(0);
  IntegrationNet net(a1.size(1), a2.size(1), options.out_dim);
  net->to(device);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(options.lr));
  Member m;
  double best = std::numeric_limits<double>::infinity();
  int64_t bad = 0;
  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    opt.zero_grad();
    auto hs1 = net->enc1->forward(a1, g.spatial1), hs2 = net->enc2->forward(a2, g.spatial2);
    auto hf1 = net->enc1->forward(a1, g.feature1), hf2 = net->enc2->forward(a2, g.feature2);
    auto fused = net->Fuse((hs1 + hs2) / 2, (hf1 + hf2) / 2);
    const auto& h = fused.first;
    auto recon = torch::mse_loss(net->dec1->forward(h, g.spatial1), a1) +
                 torch::mse_loss(net->dec2->forward(h, g.spatial2), a2) +
                 torch::mse_loss(net->dec1->forward(h, g.feature1), a1) +
                 torch::mse_loss(net->dec2->forward(h, g.feature2), a2);
    auto perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong));
    auto contrast =
        NtXentMinibatched(hs1, hs2, options.temperature, options.contrastive_batch, perm) +
        NtXentMinibatched(hf1, hf2, options.temperature, options.contrastive_batch, perm);
    auto loss = recon + contrast;
    const double lv = loss.item<double>();
    if (!std::isfinite(lv)) break;  // keep the parameters of the last finite step
    loss.backward();
    opt.step();
    m.losses.push_back(lv);
    const int64_t step = first_step + epoch;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ProgressEvent ev{"integrate", step, total_steps, lv,
                     el / static_cast<double>(step) * static_cast<double>(total_steps - step), ""};
    if (ReportAndCheckCancel(progress, cancel, ev))
      return absl::CancelledError(absl::StrCat("integrate: cancelled at epoch ", epoch));
    if (lv + options.min_delta < best) {
      best = lv;
      bad = 0;
    } else if (++bad >= options.patience) {
      break;
    }
  }
  torch::NoGradGuard ng;
  auto hs1 = net->enc1->forward(a1, g.spatial1), hs2 = net->enc2->forward(a2, g.spatial2);
  auto hf1 = net->enc1->forward(a1, g.feature1), hf2 = net->enc2->forward(a2, g.feature2);
  std::tie(m.joint, m.attention) = net->Fuse((hs1 + hs2) / 2, (hf1 + hf2) / 2);
  return m;
}

}  // namespace

absl::StatusOr<IntegrationResult> TrainIntegration(const torch::Tensor& x1,
                                                   const torch::Tensor& x2,
                                                   const IntegrationGraphs& graphs,
                                                   const IntegrationOptions& options,
                                                   const torch::Device& device,
                                                   const ProgressSink& progress,
                                                   const CancelToken* cancel) {
  if (!x1.defined() || !x2.defined() || x1.dim() != 2 || x2.dim() != 2 || x1.size(0) != x2.size(0))
    return absl::InvalidArgumentError("integration: the two feature matrices need the same N rows");
  if (options.out_dim < 1 || options.temperature <= 0 || options.contrastive_batch < 2)
    return absl::InvalidArgumentError(
        "integration: out_dim >= 1, temperature > 0 and contrastive_batch >= 2 are required");
  if (options.ensemble < 1 || options.ensemble > kMaxIntegrationEnsemble)
    return absl::InvalidArgumentError(absl::StrCat("integration: ensemble must be in 1..",
                                                   kMaxIntegrationEnsemble, ", got ",
                                                   options.ensemble));
  try {
    auto a1 = x1.to(device, torch::kFloat32), a2 = x2.to(device, torch::kFloat32);
    IntegrationGraphs g{graphs.spatial1.to(device), graphs.feature1.to(device),
                        graphs.spatial2.to(device), graphs.feature2.to(device)};
    const int64_t total = options.epochs * options.ensemble;
    const auto t0 = std::chrono::steady_clock::now();
    IntegrationResult result;
    std::vector<torch::Tensor> joints, attentions;
    for (int64_t k = 0; k < options.ensemble; ++k) {
      auto m = TrainMember(a1, a2, g, options, device, k * options.epochs, total, t0, progress, cancel);
      if (!m.ok()) return m.status();
      joints.push_back(m->joint);
      attentions.push_back(m->attention);
      result.losses.push_back(std::move(m->losses));
    }
    torch::NoGradGuard ng;
    torch::Tensor joint = joints[0];
    if (joints.size() > 1) {
      // The same sign-fixed PCA the mclust path uses (core/cluster).
      CANDIES_ASSIGN_OR_RETURN(joint, TopPrincipalComponents(torch::cat(joints, 1), options.out_dim));
    }
    result.joint = joint.to(torch::kCPU).contiguous();
    result.attention = torch::stack(attentions).mean(0).to(torch::kCPU).contiguous();
    return result;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("integrate: LibTorch error: ", e.what()));
  }
}

}  // namespace candies
