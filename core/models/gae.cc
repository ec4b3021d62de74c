#include "core/models/gae.h"

#include <chrono>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace candies {

torch::Tensor ZinbNll(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& theta,
                      const torch::Tensor& pi, const torch::Tensor& lgamma_x1) {
  const double eps = 1e-10;
  auto t1 = torch::lgamma(theta + eps) + (lgamma_x1.defined() ? lgamma_x1 : torch::lgamma(x + 1.0)) -
            torch::lgamma(x + theta + eps);
  auto t2 = (theta + x) * torch::log1p(mean / (theta + eps)) +
            x * (torch::log(theta + eps) - torch::log(mean + eps));
  auto nb_case = t1 + t2 - torch::log(1.0 - pi + eps);
  auto zero_nb = torch::pow(theta / (theta + mean + eps), theta);
  auto zero_case = -torch::log(pi + (1.0 - pi) * zero_nb + eps);
  return torch::where(x < 1e-8, zero_case, nb_case).mean();
}

namespace {

// Encoder: two GCN layers on the spatial graph; decoder: MLP trunk back to the
// features, plus ZINB heads on the trunk when counts are modelled.
struct GaeNetImpl : torch::nn::Module {
  GaeNetImpl(int64_t d_in, int64_t hidden, int64_t latent, int64_t n_counts, double dropout)
      : enc1(register_module("enc1", torch::nn::Linear(d_in, hidden))),
        enc2(register_module("enc2", torch::nn::Linear(hidden, latent))),
        dec1(register_module("dec1", torch::nn::Linear(latent, hidden))),
        dec2(register_module("dec2", torch::nn::Linear(hidden, d_in))),
        drop(register_module("drop", torch::nn::Dropout(dropout))) {
    if (n_counts > 0) {
      mean_head = register_module("mean_head", torch::nn::Linear(hidden, n_counts));
      disp_head = register_module("disp_head", torch::nn::Linear(hidden, n_counts));
      pi_head = register_module("pi_head", torch::nn::Linear(hidden, n_counts));
    }
  }
  torch::Tensor Encode(const torch::Tensor& x, const torch::Tensor& adj) {
    auto h = torch::relu(torch::mm(adj, enc1->forward(x)));
    h = drop->forward(h);
    return torch::mm(adj, enc2->forward(h));
  }
  torch::nn::Linear enc1, enc2, dec1, dec2;
  torch::nn::Dropout drop;
  torch::nn::Linear mean_head{nullptr}, disp_head{nullptr}, pi_head{nullptr};
};
TORCH_MODULE(GaeNet);

}  // namespace

class GaeModel {
 public:
  int64_t d_in = 0, hidden = 0, latent = 0, n_counts = 0;
  double dropout = 0;
  GaeNet net{nullptr};
};

absl::StatusOr<GaeResult> TrainGae(const torch::Tensor& features, const torch::Tensor& counts,
                                   const torch::Tensor& adj, int64_t latent,
                                   const GaeOptions& options, const torch::Device& device,
                                   const std::string& stage, const ProgressSink& progress,
                                   const CancelToken* cancel) {
  if (!features.defined() || features.dim() != 2 || features.size(0) < 1 || features.size(1) < 1)
    return absl::InvalidArgumentError(absl::StrCat(stage, ": features must be a non-empty N x d matrix"));
  const int64_t n = features.size(0);
  if (adj.size(0) != n || adj.size(1) != n)
    return absl::InvalidArgumentError(absl::StrCat(stage, ": adjacency is not N x N"));
  const bool zinb = counts.defined();
  if (zinb && counts.size(0) != n)
    return absl::InvalidArgumentError(absl::StrCat(stage, ": counts must have N rows"));
  if (latent < 1 || options.hidden < 1 || options.epochs < 0)
    return absl::InvalidArgumentError(absl::StrCat(stage, ": latent, hidden must be >= 1, epochs >= 0"));
  try {
    auto x = features.to(device, torch::kFloat32);
    auto a = adj.to(device);
    torch::Tensor c, size_factor, lgamma_c1;
    if (zinb) {
      c = counts.to(device, torch::kFloat32).clamp_min(0);
      lgamma_c1 = torch::lgamma(c + 1.0);
      // Size factors: library size over its median (as scanpy's size_factors).
      auto lib = c.sum(1, true).clamp_min(1e-6);
      size_factor = lib / lib.median().clamp_min(1e-6);
    }
    GaeNet net(x.size(1), options.hidden, latent, zinb ? c.size(1) : 0, options.dropout);
    net->to(device);
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(options.lr));
    GaeResult result;
    std::vector<torch::Tensor> good;  // last parameters that gave a finite loss
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
      net->train();
      opt.zero_grad();
      auto z = net->Encode(x, a);
      auto trunk = torch::relu(net->dec1->forward(z));
      auto recon = net->dec2->forward(trunk);
      auto loss = torch::mse_loss(recon, x);
      if (zinb) {
        auto mean = torch::exp(net->mean_head->forward(trunk)).clamp(1e-5, 1e6) * size_factor;
        auto theta = torch::softplus(net->disp_head->forward(trunk)).clamp(1e-4, 1e4);
        auto pi = torch::sigmoid(net->pi_head->forward(trunk));
        loss = options.mse_weight * loss + options.zinb_weight * ZinbNll(c, mean, theta, pi, lgamma_c1);
      }
      const double lv = loss.item<double>();
      if (!std::isfinite(lv)) {
        result.stopped_on_nan = true;
        if (!good.empty()) {
          torch::NoGradGuard ng;
          auto params = net->parameters();
          for (size_t i = 0; i < params.size(); ++i) params[i].copy_(good[i]);
        }
        break;
      }
      {
        torch::NoGradGuard ng;
        good.clear();
        for (const auto& p : net->parameters()) good.push_back(p.detach().clone());
      }
      loss.backward();
      opt.step();
      result.losses.push_back(lv);
      const double el =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ProgressEvent ev{stage, epoch, options.epochs, lv,
                       el / static_cast<double>(epoch) * static_cast<double>(options.epochs - epoch), ""};
      if (ReportAndCheckCancel(progress, cancel, ev))
        return absl::CancelledError(absl::StrCat(stage, ": cancelled at epoch ", epoch));
    }
    torch::NoGradGuard ng;
    net->eval();
    result.embedding = net->Encode(x, a).to(torch::kCPU).contiguous();
    auto model = std::make_shared<GaeModel>();
    model->d_in = x.size(1);
    model->hidden = options.hidden;
    model->latent = latent;
    model->n_counts = zinb ? c.size(1) : 0;
    model->dropout = options.dropout;
    model->net = net;
    result.model = std::move(model);
    return result;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(stage, ": LibTorch error: ", e.what()));
  }
}

namespace {

template <typename F>
auto GuardedGae(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": LibTorch error: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<torch::Tensor> GaeEncode(const GaeModel& model, const torch::Tensor& features,
                                        const torch::Tensor& adj, const torch::Device& device) {
  if (!features.defined() || features.dim() != 2 || features.size(1) != model.d_in)
    return absl::InvalidArgumentError(absl::StrCat(
        "features: the model expects ", model.d_in, " input features per spot, got ",
        features.defined() && features.dim() == 2 ? features.size(1) : -1));
  if (adj.size(0) != features.size(0) || adj.size(1) != features.size(0))
    return absl::InvalidArgumentError("adjacency is not N x N");
  return GuardedGae("GaeEncode", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard ng;
    GaeNet net = model.net;  // a holder copy shares the module (eval mode since training)
    return net->Encode(features.to(device, torch::kFloat32), adj.to(device))
        .to(torch::kCPU)
        .contiguous();
  });
}

absl::StatusOr<torch::Tensor> GaeDecodeFeatures(const GaeModel& model, const torch::Tensor& z,
                                                const torch::Device& device) {
  if (!z.defined() || z.dim() != 2 || z.size(1) != model.latent)
    return absl::InvalidArgumentError(absl::StrCat("embedding: the model expects width ", model.latent));
  return GuardedGae("GaeDecodeFeatures", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard ng;
    GaeNet net = model.net;  // a holder copy shares the module (eval mode since training)
    auto trunk = torch::relu(net->dec1->forward(z.to(device, torch::kFloat32)));
    return net->dec2->forward(trunk).to(torch::kCPU).contiguous();
  });
}

absl::StatusOr<torch::Tensor> GaeDecodeMean(const GaeModel& model, const torch::Tensor& z,
                                            const torch::Device& device) {
  if (model.n_counts == 0)
    return absl::FailedPreconditionError("the graph auto-encoder has no ZINB heads");
  if (!z.defined() || z.dim() != 2 || z.size(1) != model.latent)
    return absl::InvalidArgumentError(absl::StrCat("embedding: the model expects width ", model.latent));
  return GuardedGae("GaeDecodeMean", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard ng;
    GaeNet net = model.net;  // a holder copy shares the module (eval mode since training)
    auto trunk = torch::relu(net->dec1->forward(z.to(device, torch::kFloat32)));
    return torch::exp(net->mean_head->forward(trunk))
        .clamp(1e-5, 1e6)
        .to(torch::kCPU)
        .contiguous();
  });
}

bool GaeHasZinb(const GaeModel& model) { return model.n_counts > 0; }
int64_t GaeInputDim(const GaeModel& model) { return model.d_in; }

int64_t GaeBytes(const GaeModel& model) {
  int64_t bytes = 0;
  for (const auto& p : model.net->parameters()) bytes += p.numel() * p.element_size();
  for (const auto& b : model.net->buffers()) bytes += b.numel() * b.element_size();
  return bytes;
}

// File layout: one torch archive with the sizes as int64 tensors beside the
// parameters, so that a file is self-describing.
absl::Status SaveGae(const GaeModel& model, const std::string& path) {
  return GuardedGae("SaveGae", [&]() -> absl::Status {
    torch::serialize::OutputArchive ar;
    ar.write("sizes", torch::tensor({model.d_in, model.hidden, model.latent, model.n_counts},
                                    torch::kInt64));
    ar.write("dropout", torch::tensor({model.dropout}, torch::kFloat64));
    for (const auto& p : model.net->named_parameters())
      ar.write(absl::StrCat("p.", p.key()), p.value().detach().to(torch::kCPU));
    ar.save_to(path);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::shared_ptr<GaeModel>> LoadGae(const std::string& path, const torch::Device& device) {
  return GuardedGae("LoadGae", [&]() -> absl::StatusOr<std::shared_ptr<GaeModel>> {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    torch::Tensor sizes, dropout;
    ar.read("sizes", sizes);
    ar.read("dropout", dropout);
    if (sizes.numel() != 4 || dropout.numel() != 1)
      return absl::DataLossError(absl::StrCat(path, ": malformed graph auto-encoder sizes"));
    auto m = std::make_shared<GaeModel>();
    m->d_in = sizes[0].item<int64_t>();
    m->hidden = sizes[1].item<int64_t>();
    m->latent = sizes[2].item<int64_t>();
    m->n_counts = sizes[3].item<int64_t>();
    m->dropout = dropout[0].item<double>();
    if (m->d_in < 1 || m->hidden < 1 || m->latent < 1 || m->n_counts < 0)
      return absl::DataLossError(absl::StrCat(path, ": invalid graph auto-encoder sizes"));
    m->net = GaeNet(m->d_in, m->hidden, m->latent, m->n_counts, m->dropout);
    torch::NoGradGuard ng;
    for (auto& p : m->net->named_parameters()) {
      torch::Tensor t;
      ar.read(absl::StrCat("p.", p.key()), t);
      if (!t.sizes().equals(p.value().sizes()))
        return absl::DataLossError(absl::StrCat(path, ": parameter ", p.key(), " has the wrong shape"));
      p.value().copy_(t);
    }
    m->net->to(device);
    m->net->eval();
    return m;
  });
}

}  // namespace candies
