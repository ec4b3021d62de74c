#include "core/models/integration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <torch/torch.h>

#include "core/cluster/cluster.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

// Direct formula: for each anchor a in the 2N rows, -log(exp(s(a,p)/t) / sum_{j != a} exp(s(a,j)/t)).
double DirectNtXent(const torch::Tensor& z1, const torch::Tensor& z2, double t) {
  auto f = torch::cat({z1, z2}, 0).to(torch::kFloat64);
  f = f / f.norm(2, 1, true);
  const int64_t m = f.size(0), n = z1.size(0);
  double total = 0;
  for (int64_t a = 0; a < m; ++a) {
    const int64_t p = (a + n) % m;
    double denom = 0;
    for (int64_t j = 0; j < m; ++j)
      if (j != a) denom += std::exp((f[a] * f[j]).sum().item<double>() / t);
    total += -((f[a] * f[p]).sum().item<double>() / t - std::log(denom));
  }
  return total / m;
}

TEST(NtXentTest, EqualsDirectFormula) {
  torch::manual_seed(1);
  auto z1 = torch::randn({4, 3}), z2 = torch::randn({4, 3});
  EXPECT_NEAR(NtXent(z1, z2, 0.5).item<double>(), DirectNtXent(z1, z2, 0.5), 1e-4);
  EXPECT_NEAR(NtXent(z1, z2, 0.07).item<double>(), DirectNtXent(z1, z2, 0.07), 1e-3);
}

TEST(NtXentTest, MinibatchedEqualsFullWhenBatchCoversN) {
  torch::manual_seed(2);
  auto z1 = torch::randn({10, 5}), z2 = torch::randn({10, 5});
  auto perm = torch::randperm(10, torch::kLong);
  const double full = NtXent(z1, z2, 0.1).item<double>();
  EXPECT_NEAR(NtXentMinibatched(z1, z2, 0.1, 10, perm).item<double>(), full, 1e-6);
  EXPECT_NEAR(NtXentMinibatched(z1, z2, 0.1, 64, perm).item<double>(), full, 1e-6);
  // Two chunks of 5: the mean of the two chunk losses.
  auto ids_a = perm.narrow(0, 0, 5), ids_b = perm.narrow(0, 5, 5);
  const double expect = (NtXent(z1.index_select(0, ids_a), z2.index_select(0, ids_a), 0.1).item<double>() +
                         NtXent(z1.index_select(0, ids_b), z2.index_select(0, ids_b), 0.1).item<double>()) / 2;
  EXPECT_NEAR(NtXentMinibatched(z1, z2, 0.1, 5, perm).item<double>(), expect, 1e-6);
}

torch::Tensor Identity(int64_t n) {
  auto idx = torch::arange(n, torch::kLong);
  return torch::sparse_coo_tensor(torch::stack({idx, idx}), torch::ones({n}), {n, n}).coalesce();
}

TEST(IntegrationTest, TrainsAndSeparatesTwoGroups) {
  torch::manual_seed(3);
  const int64_t n = 80;
  auto group = torch::cat({torch::zeros({n / 2}), torch::ones({n / 2})}).unsqueeze(1);
  auto x1 = group * 3 + torch::randn({n, 6});
  auto x2 = group * 3 + torch::randn({n, 4});
  IntegrationGraphs g{Identity(n), Identity(n), Identity(n), Identity(n)};
  IntegrationOptions o;
  o.epochs = 50;
  o.out_dim = 8;
  o.contrastive_batch = 32;  // exercises the minibatched path
  auto r = TrainIntegration(x1, x2, g, o, torch::kCPU);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->joint.size(0), n);
  EXPECT_EQ(r->joint.size(1), 8);
  EXPECT_EQ(r->attention.size(1), 2);
  ASSERT_EQ(r->losses.size(), 1u);
  EXPECT_LT(r->losses[0].back(), r->losses[0].front());
  // Group centroids are further apart than the within-group spread.
  auto a = r->joint.narrow(0, 0, n / 2), b = r->joint.narrow(0, n / 2, n / 2);
  const double between = (a.mean(0) - b.mean(0)).norm().item<double>();
  const double within = (a - a.mean(0)).norm(2, 1).mean().item<double>();
  EXPECT_GT(between, within);
}

// Two groups, identity graphs: a small problem every integration test shares.
struct TwoGroups {
  torch::Tensor x1, x2;
  IntegrationGraphs g;
};
TwoGroups MakeTwoGroups(int64_t n) {
  torch::manual_seed(3);
  auto group = torch::cat({torch::zeros({n / 2}), torch::ones({n / 2})}).unsqueeze(1);
  return {group * 3 + torch::randn({n, 6}), group * 3 + torch::randn({n, 4}),
          IntegrationGraphs{Identity(n), Identity(n), Identity(n), Identity(n)}};
}

TEST(IntegrationTest, EnsembleIsThePrincipalComponentsOfItsMembers) {
  const int64_t n = 60;
  TwoGroups d = MakeTwoGroups(n);
  IntegrationOptions o;
  o.epochs = 20;
  o.out_dim = 5;
  // The members are the networks single runs train one after another from
  // the same generator stream.
  torch::manual_seed(11);
  auto m1 = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  auto m2 = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_FALSE(torch::allclose(m1->joint, m2->joint)) << "members start from different weights";
  o.ensemble = 2;
  torch::manual_seed(11);
  auto e = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->losses.size(), 2u);
  // Trained together as one batched network: equal up to float rounding.
  ASSERT_EQ(e->losses[0].size(), m1->losses[0].size());
  ASSERT_EQ(e->losses[1].size(), m2->losses[0].size());
  for (size_t i = 0; i < e->losses[0].size(); ++i) {
    EXPECT_NEAR(e->losses[0][i], m1->losses[0][i], 1e-5 * std::abs(m1->losses[0][i]));
    EXPECT_NEAR(e->losses[1][i], m2->losses[0][i], 1e-5 * std::abs(m2->losses[0][i]));
  }
  ASSERT_EQ(e->joint.sizes(), (std::vector<int64_t>{n, 5}));
  EXPECT_TRUE(torch::allclose(e->attention, (m1->attention + m2->attention) / 2, 1e-5, 1e-6));
  // Independently: SVD of the centred concatenation; U S up to each column's sign.
  auto cat = torch::cat({m1->joint, m2->joint}, 1).to(torch::kDouble);
  auto svd = torch::linalg_svd(cat - cat.mean(0, true), /*full_matrices=*/false);
  auto scores = (std::get<0>(svd) * std::get<1>(svd)).narrow(1, 0, 5);
  auto got = e->joint.to(torch::kDouble);
  for (int64_t c = 0; c < 5; ++c) {
    const double sign = (got.select(1, c) * scores.select(1, c)).sum().item<double>() > 0 ? 1 : -1;
    EXPECT_TRUE(torch::allclose(got.select(1, c), sign * scores.select(1, c), 1e-3, 1e-3))
        << "component " << c;
  }
  // Same seed, same ensemble.
  torch::manual_seed(11);
  auto again = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal(again->joint, e->joint));
}

TEST(NtXentTest, BatchedEqualsEachMemberAlone) {
  torch::manual_seed(4);
  auto z1 = torch::randn({3, 10, 5}), z2 = torch::randn({3, 10, 5});
  auto perms = torch::stack({torch::randperm(10, torch::kLong), torch::randperm(10, torch::kLong),
                             torch::randperm(10, torch::kLong)});
  auto full = NtXentBatched(z1, z2, 0.1);
  auto chunked = NtXentMinibatchedBatched(z1, z2, 0.1, 4, perms);
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{3}));
  for (int64_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(full[k].item<double>(), NtXent(z1[k], z2[k], 0.1).item<double>(), 1e-5);
    EXPECT_NEAR(chunked[k].item<double>(),
                NtXentMinibatched(z1[k], z2[k], 0.1, 4, perms[k]).item<double>(), 1e-5);
  }
}

// The integration as it was trained before the ensemble was batched: one
// authors' network after another (the reference the batched network must equal).
struct RefGcnImpl : torch::nn::Module {
  RefGcnImpl(int64_t in, int64_t out) {
    weight = register_parameter("weight", torch::empty({in, out}));
    torch::nn::init::xavier_uniform_(weight);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& adj) {
    return torch::mm(adj, torch::mm(x, weight));
  }
  torch::Tensor weight;
};
TORCH_MODULE(RefGcn);

struct RefNetImpl : torch::nn::Module {
  RefNetImpl(int64_t d1, int64_t d2, int64_t out)
      : enc1(register_module("enc1", RefGcn(d1, out))),
        enc2(register_module("enc2", RefGcn(d2, out))),
        dec1(register_module("dec1", RefGcn(out, d1))),
        dec2(register_module("dec2", RefGcn(out, d2))) {
    w_omega = register_parameter("w_omega", torch::empty({out, out}));
    u_omega = register_parameter("u_omega", torch::empty({out, 1}));
    torch::nn::init::xavier_uniform_(w_omega);
    torch::nn::init::xavier_uniform_(u_omega);
  }
  std::pair<torch::Tensor, torch::Tensor> Fuse(const torch::Tensor& hs, const torch::Tensor& hf) {
    auto emb = torch::stack({hs, hf}, 1);
    auto v = torch::tanh(torch::matmul(emb, w_omega));
    auto score = torch::matmul(v, u_omega).squeeze(-1) + 1e-6;
    auto alpha = torch::softmax(score, 1);
    return {(emb * alpha.unsqueeze(-1)).sum(1), alpha};
  }
  RefGcn enc1, enc2, dec1, dec2;
  torch::Tensor w_omega, u_omega;
};
TORCH_MODULE(RefNet);

struct RefMember {
  torch::Tensor joint, attention;
  std::vector<double> losses;
};

RefMember TrainReferenceMember(const torch::Tensor& a1, const torch::Tensor& a2,
                               const IntegrationGraphs& g, const IntegrationOptions& o) {
  const int64_t n = a1.size(0);
  RefNet net(a1.size(1), a2.size(1), o.out_dim);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr));
  RefMember m;
  double best = std::numeric_limits<double>::infinity();
  int64_t bad = 0;
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    opt.zero_grad();
    auto hs1 = net->enc1->forward(a1, g.spatial1), hs2 = net->enc2->forward(a2, g.spatial2);
    auto hf1 = net->enc1->forward(a1, g.feature1), hf2 = net->enc2->forward(a2, g.feature2);
    auto h = net->Fuse((hs1 + hs2) / 2, (hf1 + hf2) / 2).first;
    auto recon = torch::mse_loss(net->dec1->forward(h, g.spatial1), a1) +
                 torch::mse_loss(net->dec2->forward(h, g.spatial2), a2) +
                 torch::mse_loss(net->dec1->forward(h, g.feature1), a1) +
                 torch::mse_loss(net->dec2->forward(h, g.feature2), a2);
    auto perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong));
    auto loss = recon + NtXentMinibatched(hs1, hs2, o.temperature, o.contrastive_batch, perm) +
                NtXentMinibatched(hf1, hf2, o.temperature, o.contrastive_batch, perm);
    const double lv = loss.item<double>();
    if (!std::isfinite(lv)) break;
    loss.backward();
    opt.step();
    m.losses.push_back(lv);
    if (lv + o.min_delta < best) {
      best = lv;
      bad = 0;
    } else if (++bad >= o.patience) {
      break;
    }
  }
  torch::NoGradGuard ng;
  auto hs1 = net->enc1->forward(a1, g.spatial1), hs2 = net->enc2->forward(a2, g.spatial2);
  auto hf1 = net->enc1->forward(a1, g.feature1), hf2 = net->enc2->forward(a2, g.feature2);
  std::tie(m.joint, m.attention) = net->Fuse((hs1 + hs2) / 2, (hf1 + hf2) / 2);
  return m;
}

// Largest relative gap between the batched ensemble's per-member losses and
// the reference members' (infinite when an epoch count differs), and between
// the joint embeddings (absolute) and the mean attentions.
struct Gaps {
  double loss = 0, joint = 0, attention = 0;
};
Gaps Compare(const IntegrationResult& e, const std::vector<RefMember>& ref, int64_t out_dim) {
  Gaps gaps;
  std::vector<torch::Tensor> joints, attentions;
  for (size_t k = 0; k < ref.size(); ++k) {
    if (e.losses[k].size() != ref[k].losses.size()) gaps.loss = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < std::min(e.losses[k].size(), ref[k].losses.size()); ++i)
      gaps.loss = std::max(gaps.loss, std::abs(e.losses[k][i] - ref[k].losses[i]) /
                                          std::abs(ref[k].losses[i]));
    joints.push_back(ref[k].joint);
    attentions.push_back(ref[k].attention);
  }
  auto joint = TopPrincipalComponents(torch::cat(joints, 1), out_dim);
  EXPECT_TRUE(joint.ok()) << joint.status();
  if (joint.ok()) gaps.joint = (*joint - e.joint).abs().max().item<double>();
  gaps.attention = (torch::stack(attentions).mean(0) - e.attention).abs().max().item<double>();
  return gaps;
}

// Three members, trained as one batched network and one after another from the
// same seed; `perturb_member` >= 0 draws one extra number before that reference
// member (as if its seed changed), which the comparison must notice.
Gaps BatchedVersusSequential(const IntegrationOptions& o, const TwoGroups& d, int perturb_member,
                             std::vector<size_t>* epochs_run = nullptr) {
  torch::manual_seed(21);
  auto e = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
  EXPECT_TRUE(e.ok()) << e.status();
  const double after_batched = torch::rand({1}).item<double>();
  torch::manual_seed(21);
  std::vector<RefMember> ref;
  for (int k = 0; k < o.ensemble; ++k) {
    if (k == perturb_member) torch::rand({1});
    ref.push_back(TrainReferenceMember(d.x1, d.x2, d.g, o));
  }
  // The generator is left where the sequential run leaves it.
  if (perturb_member < 0) {
    EXPECT_EQ(torch::rand({1}).item<double>(), after_batched);
  }
  if (epochs_run != nullptr)
    for (const auto& m : ref) epochs_run->push_back(m.losses.size());
  return e.ok() ? Compare(*e, ref, o.out_dim) : Gaps{};
}

TEST(IntegrationTest, BatchedEnsembleEqualsMembersTrainedOneAfterAnother) {
  TwoGroups d = MakeTwoGroups(40);
  IntegrationOptions o;
  o.epochs = 12;
  o.out_dim = 4;
  o.ensemble = 3;
  Gaps same = BatchedVersusSequential(o, d, -1);
  EXPECT_LT(same.loss, 1e-5);
  EXPECT_LT(same.joint, 1e-4);
  EXPECT_LT(same.attention, 1e-5);
  // One member's seed changed: the comparison fails.
  Gaps other = BatchedVersusSequential(o, d, 1);
  EXPECT_GT(other.loss, 1e-3);
  EXPECT_GT(other.joint, 1e-2);
}

TEST(IntegrationTest, MembersTrainedTogetherFitTheirMemoryBound) {
  IntegrationOptions o;
  o.ensemble = 3;
  // 1,296 spots: one chunk of 2,592 x 2,592 floats (27 MB) per member.
  EXPECT_EQ(MembersTrainedTogether(o, 1296), 3);
  o.batched_members_bytes = 2 * 4 * 2592 * 2592;
  EXPECT_EQ(MembersTrainedTogether(o, 1296), 2);
  // 20,000 spots: 5 chunks of 8,192^2 floats (1.3 GB) per member, over 1 GiB.
  o.batched_members_bytes = int64_t{1} << 30;
  EXPECT_EQ(MembersTrainedTogether(o, 20000), 1);
  // Bounded by one member per group, the ensemble is trained one member at a
  // time through the same code, with the same result.
  TwoGroups d = MakeTwoGroups(40);
  o.epochs = 12;
  o.out_dim = 4;
  o.batched_members_bytes = 1;
  Gaps alone = BatchedVersusSequential(o, d, -1);
  EXPECT_LT(alone.loss, 1e-5);
  EXPECT_LT(alone.joint, 1e-4);
}

TEST(IntegrationTest, BatchedEnsembleEqualsSequentialWithMinibatchesAndEarlyStops) {
  TwoGroups d = MakeTwoGroups(40);
  IntegrationOptions o;
  o.epochs = 40;
  o.out_dim = 4;
  o.ensemble = 3;
  o.contrastive_batch = 16;  // each member's own permutations matter
  o.patience = 2;            // members stop early, at different epochs
  o.min_delta = 0.05;
  std::vector<size_t> epochs_run;
  Gaps same = BatchedVersusSequential(o, d, -1, &epochs_run);
  ASSERT_EQ(epochs_run.size(), 3u);
  EXPECT_LT(epochs_run[0], 40u) << "the first member must stop early for this test";
  EXPECT_LT(same.loss, 1e-5);
  EXPECT_LT(same.joint, 1e-4);
  EXPECT_LT(same.attention, 1e-5);
  Gaps other = BatchedVersusSequential(o, d, 2);
  EXPECT_GT(other.loss, 1e-3);
}

TEST(IntegrationTest, EnsembleSizeOutsideItsRangeNamesTheField) {
  TwoGroups d = MakeTwoGroups(20);
  IntegrationOptions o;
  o.epochs = 2;
  for (int64_t bad : {int64_t{0}, kMaxIntegrationEnsemble + 1}) {
    o.ensemble = bad;
    auto r = TrainIntegration(d.x1, d.x2, d.g, o, torch::kCPU);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ensemble"), std::string::npos) << r.status();
  }
}

}  // namespace
}  // namespace candies
