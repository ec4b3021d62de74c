#include "core/models/integration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/cluster/cluster.h"
#include "core/models/ntxent.h"
#include "core/util/status_macros.h"

namespace candies {

torch::Tensor NtXent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature) {
  return NtXentBatched(z1.unsqueeze(0), z2.unsqueeze(0), temperature).squeeze(0);
}

torch::Tensor NtXentBatched(const torch::Tensor& z1, const torch::Tensor& z2, double temperature) {
  // The fused loss (core/models/ntxent.h) goes member by member and block by
  // block through one buffer: no member's 2N x 2N matrix is ever held whole.
  auto f = torch::nn::functional::normalize(
      torch::cat({z1, z2}, 1), torch::nn::functional::NormalizeFuncOptions().dim(2));
  return FusedNtXent(f, temperature);
}

torch::Tensor NtXentMinibatchedBatched(const torch::Tensor& z1, const torch::Tensor& z2,
                                       double temperature, int64_t batch,
                                       const torch::Tensor& perms) {
  const int64_t m = z1.size(0), n = z1.size(1), d = z1.size(2);
  if (batch >= n) return NtXentBatched(z1, z2, temperature);
  auto p = perms.to(z1.device(), /*non_blocking=*/true);  // no stream sync for host permutations
  torch::Tensor total;
  int64_t chunks = 0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t len = std::min(batch, n - start);
    if (len < 2 && chunks > 0) break;  // a single spot has no negatives
    auto ids = p.narrow(1, start, len).unsqueeze(2).expand({m, len, d});
    auto l = NtXentBatched(z1.gather(1, ids), z2.gather(1, ids), temperature);
    total = total.defined() ? total + l : l;
    ++chunks;
  }
  return total / static_cast<double>(chunks);
}

torch::Tensor NtXentMinibatched(const torch::Tensor& z1, const torch::Tensor& z2,
                                double temperature, int64_t batch, const torch::Tensor& perm) {
  return NtXentMinibatchedBatched(z1.unsqueeze(0), z2.unsqueeze(0), temperature, batch,
                                  perm.unsqueeze(0))
      .squeeze(0);
}

namespace {

// The ensemble's members as one network: each weight of the authors' network
// (linear GCN encoders/decoders A X W, attention w_omega/u_omega) stacked along a
// leading member dimension M. Every product acts on each member's slice alone
// (the sparse A products on the members' columns side by side), so member k's
// loss and gradients are exactly those of a network trained alone; one pass and
// one optimizer step serve all members, which saves the per-operator overhead
// that dominates these small tensors on a CPU.
struct StackedNet {
  torch::Tensor enc1, enc2;        // M x d_i x out
  torch::Tensor dec1, dec2;        // M x out x d_i
  torch::Tensor w_omega, u_omega;  // M x out x out, M x out x 1
  std::vector<torch::Tensor> Parameters() const {
    return {enc1, enc2, dec1, dec2, w_omega, u_omega};
  }
};

// One member's initial weights, drawn from the global generator in the order
// the authors' module draws them (xavier-uniform: enc1, enc2, dec1, dec2,
// w_omega, u_omega).
std::vector<torch::Tensor> InitialWeights(int64_t d1, int64_t d2, int64_t out) {
  std::vector<torch::Tensor> w;
  for (auto shape : std::vector<std::vector<int64_t>>{
           {d1, out}, {d2, out}, {out, d1}, {out, d2}, {out, out}, {out, 1}}) {
    w.push_back(torch::empty(shape));
    torch::nn::init::xavier_uniform_(w.back());
  }
  return w;
}

StackedNet Stack(const std::vector<std::vector<torch::Tensor>>& members,
                 const torch::Device& device) {
  auto stacked = [&](size_t i) {
    std::vector<torch::Tensor> v;
    for (const auto& m : members) v.push_back(m[i]);
    return torch::stack(v).to(device).requires_grad_(true);
  };
  return {stacked(0), stacked(1), stacked(2), stacked(3), stacked(4), stacked(5)};
}

// A (X W_k) for every member k: N x M x out.
torch::Tensor Encode(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& adj) {
  const int64_t m = w.size(0), d = w.size(1), out = w.size(2);
  auto xw = torch::mm(x, w.permute({1, 0, 2}).reshape({d, m * out}));  // N x (M out)
  return torch::mm(adj, xw).view({x.size(0), m, out});
}

// H_k W_k for every member k, laid out N x (M d) for the A products.
torch::Tensor DecodeWeights(const torch::Tensor& h, const torch::Tensor& w) {
  return torch::bmm(h, w).permute({1, 0, 2}).reshape({h.size(1), h.size(0) * w.size(2)});
}

// Per-member mean squared error of A (H W) (N x (M d)) against x (N x d): M values.
torch::Tensor ReconError(const torch::Tensor& hw, const torch::Tensor& adj, const torch::Tensor& x) {
  const int64_t m = hw.size(1) / x.size(1);
  auto r = torch::mm(adj, hw).view({x.size(0), m, x.size(1)});
  return (r - x.unsqueeze(1)).pow(2).mean(torch::IntArrayRef{0, 2});
}

struct Pass {
  torch::Tensor hs1, hs2, hf1, hf2;  // M x N x out: each view's encoding
  torch::Tensor h, alpha;            // M x N x out joint, M x N x 2 attention (spatial, feature)
};

Pass Forward(const StackedNet& net, const torch::Tensor& a1, const torch::Tensor& a2,
             const IntegrationGraphs& g) {
  Pass p;
  p.hs1 = Encode(a1, net.enc1, g.spatial1).transpose(0, 1);
  p.hs2 = Encode(a2, net.enc2, g.spatial2).transpose(0, 1);
  p.hf1 = Encode(a1, net.enc1, g.feature1).transpose(0, 1);
  p.hf2 = Encode(a2, net.enc2, g.feature2).transpose(0, 1);
  // Attention over the two views per spot.
  auto emb = torch::stack({(p.hs1 + p.hs2) / 2, (p.hf1 + p.hf2) / 2}, 2);  // M x N x 2 x out
  const int64_t m = emb.size(0), n = emb.size(1), out = emb.size(3);
  auto v = torch::tanh(torch::bmm(emb.view({m, n * 2, out}), net.w_omega));
  auto score = torch::bmm(v, net.u_omega).view({m, n, 2}) + 1e-6;
  p.alpha = torch::softmax(score, 2);
  p.h = (emb * p.alpha.unsqueeze(-1)).sum(2);
  return p;
}

// One member's training state; its permutations come from its own generator.
struct MemberRun {
  explicit MemberRun(at::Generator generator) : gen(std::move(generator)) {}
  at::Generator gen;  // the global stream from just after its initial weights
  int64_t started = 0;  // epochs begun (= permutations drawn)
  bool training = true;
  double best = std::numeric_limits<double>::infinity();
  int64_t bad = 0;
  std::vector<double> losses;
  torch::Tensor joint, attention;  // N x out, N x 2 on the device, from its final weights
};

at::Generator CloneDefaultGenerator() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.clone();
}

void SetDefaultGeneratorState(at::Generator from) {
  auto gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(from.mutex());
    state = from.get_state();
  }
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

struct GroupContext {
  const torch::Tensor &a1, &a2;
  const IntegrationGraphs& g;
  const IntegrationOptions& options;
  const torch::Device& device;
  int64_t first_member;  // members before this group are done
  int64_t count;         // members trained together in this group
  int64_t* last_step;    // progress steps (member-epochs) already reported
  std::chrono::steady_clock::time_point t0;
  const ProgressSink& progress;
  const CancelToken* cancel;
};

// Trains c.count members together from the global generator's state.
// Sequentially, member k's initial weights were drawn after member k-1 had drawn
// one permutation per epoch it ran, so each is drawn here as if its predecessor
// runs every epoch; when a member stops early, its successors started from the
// wrong weights: they are dropped and the caller trains them again. Returns the
// members that match a sequential run (at least the first).
absl::StatusOr<std::vector<MemberRun>> TrainGroup(const GroupContext& c) {
  const IntegrationOptions& o = c.options;
  const int64_t n = c.a1.size(0), m = c.count;
  std::vector<std::vector<torch::Tensor>> init;
  std::vector<MemberRun> runs;
  for (int64_t k = 0; k < m; ++k) {
    init.push_back(InitialWeights(c.a1.size(1), c.a2.size(1), o.out_dim));
    runs.emplace_back(CloneDefaultGenerator());
    if (k + 1 < m)
      for (int64_t e = 0; e < o.epochs; ++e) torch::randperm(n, torch::kLong);
  }
  StackedNet net = Stack(init, c.device);
  torch::optim::Adam opt(net.Parameters(), torch::optim::AdamOptions(o.lr));
  int64_t valid = m;  // members [0, valid) match a sequential run
  auto finish = [&](int64_t k, const Pass& p) {
    runs[k].training = false;
    runs[k].joint = p.h[k].detach();
    runs[k].attention = p.alpha[k].detach();
    if (runs[k].started < o.epochs) valid = std::min(valid, k + 1);
  };
  auto training = [&] {
    std::vector<int64_t> ids;
    for (int64_t k = 0; k < valid; ++k)
      if (runs[k].training) ids.push_back(k);
    return ids;
  };
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    std::vector<int64_t> ids = training();
    if (ids.empty()) break;
    opt.zero_grad();
    std::vector<torch::Tensor> perms(m);
    for (int64_t k : ids) {
      perms[k] = torch::randperm(n, runs[k].gen, torch::kLong);
      ++runs[k].started;
    }
    for (auto& perm : perms)
      if (!perm.defined()) perm = perms[ids.front()];  // a stopped member's loss is unused
    Pass p = Forward(net, c.a1, c.a2, c.g);
    auto hw1 = DecodeWeights(p.h, net.dec1), hw2 = DecodeWeights(p.h, net.dec2);
    auto recon = ReconError(hw1, c.g.spatial1, c.a1) + ReconError(hw2, c.g.spatial2, c.a2) +
                 ReconError(hw1, c.g.feature1, c.a1) + ReconError(hw2, c.g.feature2, c.a2);
    auto perm = torch::stack(perms);
    auto contrast =
        NtXentMinibatchedBatched(p.hs1, p.hs2, o.temperature, o.contrastive_batch, perm) +
        NtXentMinibatchedBatched(p.hf1, p.hf2, o.temperature, o.contrastive_batch, perm);
    auto loss = recon + contrast;  // M
    auto lv = loss.detach().to(torch::kCPU, torch::kDouble);
    const double* lvp = lv.data_ptr<double>();
    // A non-finite loss stops its member with the weights of its last finite step.
    for (int64_t k : ids)
      if (!std::isfinite(lvp[k])) finish(k, p);
    ids = training();
    if (ids.empty()) break;
    loss.index_select(0, torch::tensor(ids, torch::kLong).to(c.device)).sum().backward();
    opt.step();
    std::vector<int64_t> stopped;
    for (int64_t k : ids) {
      MemberRun& r = runs[k];
      r.losses.push_back(lvp[k]);
      if (lvp[k] + o.min_delta < r.best) {
        r.best = lvp[k];
        r.bad = 0;
      } else if (++r.bad >= o.patience) {
        stopped.push_back(k);
      }
    }
    if (!stopped.empty()) {
      torch::NoGradGuard ng;
      Pass after = Forward(net, c.a1, c.a2, c.g);
      for (int64_t k : stopped) finish(k, after);
    }
    // One event per member and epoch, as a sequential run reports them (in
    // member order within the epoch; steps count member-epochs, so a restart
    // after an early stop is not reported as progress beyond the total).
    const int64_t total = o.epochs * o.ensemble;
    for (int64_t k : ids) {
      const int64_t step = std::min(total, ++*c.last_step);
      const double el =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - c.t0).count();
      ProgressEvent ev{"integrate", step, total, lvp[k],
                       el / static_cast<double>(step) * static_cast<double>(total - step), ""};
      if (ReportAndCheckCancel(c.progress, c.cancel, ev))
        return absl::CancelledError(absl::StrCat("integrate: cancelled at epoch ", epoch));
    }
  }
  std::vector<int64_t> left = training();
  if (!left.empty()) {
    torch::NoGradGuard ng;
    Pass p = Forward(net, c.a1, c.a2, c.g);
    for (int64_t k : left) finish(k, p);
  }
  runs.erase(runs.begin() + valid, runs.end());
  return runs;
}

}  // namespace

int64_t MembersTrainedTogether(const IntegrationOptions& options, int64_t n) {
  const int64_t chunk = std::max<int64_t>(1, std::min(options.contrastive_batch, n));
  const int64_t chunks = (n + chunk - 1) / chunk;
  const double logits = 4.0 * static_cast<double>(2 * chunk) * static_cast<double>(2 * chunk) *
                        static_cast<double>(chunks);
  const double fit = static_cast<double>(options.batched_members_bytes) / logits;
  return std::clamp<int64_t>(static_cast<int64_t>(fit), 1, std::max<int64_t>(1, options.ensemble));
}

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
    const auto t0 = std::chrono::steady_clock::now();
    IntegrationResult result;
    std::vector<torch::Tensor> joints, attentions;
    int64_t last_step = 0;
    const int64_t together = MembersTrainedTogether(options, a1.size(0));
    while (static_cast<int64_t>(joints.size()) < options.ensemble) {
      const int64_t done = static_cast<int64_t>(joints.size());
      GroupContext ctx{a1, a2, g, options, device, done,
                       std::min(together, options.ensemble - done), &last_step, t0, progress, cancel};
      CANDIES_ASSIGN_OR_RETURN(std::vector<MemberRun> runs, TrainGroup(ctx));
      // The global stream continues where the last matching member left it.
      SetDefaultGeneratorState(runs.back().gen);
      for (MemberRun& r : runs) {
        joints.push_back(r.joint);
        attentions.push_back(r.attention);
        result.losses.push_back(std::move(r.losses));
      }
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
