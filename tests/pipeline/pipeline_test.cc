#include "core/pipeline/pipeline.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <unistd.h>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/graph/graph.h"
#include "core/graph/layout.h"
#include "core/metrics/metrics.h"
#include "core/models/integration.h"
#include "core/pipeline/trained_model_internal.h"
#include "core/preprocess/preprocess.h"
#include "core/runtime/runtime.h"
#include "core/sim/simulator.h"
#include "gtest/gtest.h"
#include "tests/test_device.h"

namespace candies {
namespace {

struct Inputs {
  ModalityInput rna, prot;
  std::vector<int32_t> truth;
};

Inputs Small(int64_t grid = 20, uint64_t seed = 0) {
  SimulatorOptions so;
  so.grid = grid;
  so.seed = seed;
  auto sim = Simulate(so);
  EXPECT_TRUE(sim.ok());
  Inputs in;
  in.rna = {"rna", ModalityKind::kRna, std::make_shared<AnnData>(sim->rna)};
  in.prot = {"prot", ModalityKind::kProtein, std::make_shared<AnnData>(sim->protein)};
  in.truth = sim->domain;
  return in;
}

PipelineOptions SmallOptions() {
  PipelineOptions o = PipelineOptions::FromPreset(Preset::kFast);
  o.kind = JobKind::kIntegrate;
  o.n_clusters = 5;
  o.device = TestDeviceName();
  o.gae.epochs = 40;
  o.integration.epochs = 40;
  o.preprocess.min_cells = 3;
  return o;
}

TEST(PipelineTest, EndToEndSmallGridIsAccurateAndDeterministic) {
  Inputs in = Small();
  PipelineOptions o = SmallOptions();
  o.labels_key = "domain";
  std::vector<std::string> stages;
  auto r = RunPipeline(in.rna, in.prot, o, [&](const ProgressEvent& ev) {
    if (stages.empty() || stages.back() != ev.stage) stages.push_back(ev.stage);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  const int64_t n = 400;
  ASSERT_EQ(static_cast<int64_t>(r->clusters.size()), n);
  EXPECT_EQ(r->joint.size(0), n);
  EXPECT_EQ(r->joint.size(1), o.integration.out_dim);
  EXPECT_EQ(r->emb_mod1.size(1), o.gae.rna_latent);
  EXPECT_EQ(r->emb_mod2.size(1), o.gae.latent);
  const double ari = metrics::AdjustedRandIndex(in.truth, r->clusters);
  EXPECT_GT(ari, 0.5) << "integrated ARI on the 20x20 simulation";
  ASSERT_FALSE(r->metrics.empty());
  EXPECT_EQ(r->metrics[0].first, "ARI");
  EXPECT_NEAR(r->metrics[0].second, ari, 1e-12);
  EXPECT_EQ(r->low_quality, "mod1") << "the noisy RNA must be picked as low quality";
  EXPECT_NE(std::find(stages.begin(), stages.end(), "integrate"), stages.end());

  auto again = RunPipeline(in.rna, in.prot, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->clusters, r->clusters) << "same seed and device, same clusters";

  AnnData out = ResultToAnnData(*r);
  EXPECT_EQ(out.obs.index, in.rna.adata->obs.index);
  const Column* c = out.obs.Find("candies_cluster");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind, Column::Kind::kCategorical);
  EXPECT_EQ(out.obsm.at("X_candies").n_cols, o.integration.out_dim);
  EXPECT_EQ(out.obsm.at("X_candies_mod1").n_rows, n);
  EXPECT_EQ(out.obsm.count("spatial"), 1u);
  const UnsValue* u = out.uns.Find("candies");
  ASSERT_NE(u, nullptr);
  ASSERT_NE(u->Find("low_quality"), nullptr);
  EXPECT_EQ(u->Find("low_quality")->str, "mod1");
  EXPECT_NE(u->Find("seconds"), nullptr);
  EXPECT_NE(u->Find("version"), nullptr);
  // Loss curves of the trained stages, for the report.
  const UnsValue* losses = u->Find("losses");
  ASSERT_NE(losses, nullptr);
  ASSERT_NE(losses->Find("integrate"), nullptr);
  // One loss per epoch of each of the ensemble's networks (trained together:
  // each epoch, one loss per member).
  EXPECT_EQ(static_cast<int64_t>(losses->Find("integrate")->floats.size()),
            o.integration.epochs * std::max<int64_t>(1, o.integration.ensemble));
  // Per-modality clusters, the labels, and marker features of the RNA modality
  // in scanpy's layout (one rec-array field per domain, best first).
  EXPECT_NE(out.obs.Find("candies_cluster_mod1"), nullptr);
  EXPECT_NE(out.obs.Find("candies_cluster_mod2"), nullptr);
  ASSERT_NE(out.obs.Find("candies_truth"), nullptr);
  EXPECT_EQ(out.obs.Find("candies_truth")->categories.size(), 5u);
  const UnsValue* rgg = out.uns.Find("rank_genes_groups");
  ASSERT_NE(rgg, nullptr);
  const UnsValue* names = rgg->Find("names");
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(names->kind, UnsValue::Kind::kRecArray);
  EXPECT_EQ(names->children.size(), c->categories.size());
  EXPECT_EQ(names->children[0].first, c->categories[0]);
  EXPECT_EQ(static_cast<int64_t>(names->children[0].second.strings.size()),
            in.rna.adata->n_vars());
  EXPECT_EQ(rgg->Find("params")->Find("modality")->str, "mod1");
  EXPECT_LT(rgg->Find("pvals_adj")->children[0].second.floats[0], 1e-3)
      << "the best marker of a simulated domain is significant";
}

// What the integration consumes: the low-quality modality's embedding and the
// high-quality modality's preprocessed features (or its GAE embedding when
// high_input is kEmbedding). Rebuilt here from the pieces the result
// exposes, the joint embedding must come out bit for bit the same.
TEST(PipelineTest, IntegrationTakesTheHighQualityFeaturesByDefault) {
  Inputs in = Small();
  for (bool high_features : {true, false}) {
    SCOPED_TRACE(high_features ? "features" : "embedding");
    PipelineOptions o = SmallOptions();
    o.high_input = high_features ? HighInput::kFeatures : HighInput::kEmbedding;
    // One of the two runs also smooths the joint embedding (checked below).
    o.joint_smoothing_hops = high_features ? 1 : 0;
    auto r = RunPipeline(in.rna, in.prot, o);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->low_quality, "mod1");
    const UnsValue* params = r->uns.Find("params");
    ASSERT_NE(params, nullptr);
    ASSERT_NE(params->Find("integration_high_input"), nullptr);
    EXPECT_EQ(params->Find("integration_high_input")->str, high_features ? "features" : "embedding");

    torch::Tensor high = r->emb_mod2;
    if (high_features) {
      PreprocessOptions popts = o.preprocess;
      popts.seed = o.seed;
      auto p = PreprocessModality(*in.prot.adata, ModalityKind::kProtein, popts);
      ASSERT_TRUE(p.ok()) << p.status();
      high = p->features;
      ASSERT_NE(high.size(1), r->emb_mod2.size(1)) << "PCA width differs from the GAE latent";
    }
    const int64_t n = r->emb_mod1.size(0);
    auto sk = SpatialKnn(r->spatial, n, 2, o.integration.spatial_k);
    auto f1 = FeatureKnn(r->emb_mod1, o.integration.feature_k);
    auto f2 = FeatureKnn(high, o.integration.feature_k);
    ASSERT_TRUE(sk.ok() && f1.ok() && f2.ok());
    IntegrationGraphs g;
    g.spatial1 = g.spatial2 = NormalizedAdjacency(*sk, n, torch::kCPU);
    g.feature1 = NormalizedAdjacency(*f1, n, torch::kCPU);
    g.feature2 = NormalizedAdjacency(*f2, n, torch::kCPU);
    SeedEverything(o.seed ^ kIntegrationSeedSalt);
    auto ir = TrainIntegration(r->emb_mod1, high, g, o.integration, torch::kCPU);
    ASSERT_TRUE(ir.ok()) << ir.status();
    // Then the joint embedding is smoothed over the layout's graph (the 20 x 20
    // grid: its 4 neighbours): joint_smoothing_hops times when fixed, else by
    // the adaptive rule (hops while Moran's I < joint_smoothing_min_morans_i).
    torch::Tensor joint = ir->joint;
    const UnsValue* lu = r->uns.Find("layout");
    ASSERT_NE(lu, nullptr);
    const int64_t hops = lu->Find("hops")->i;
    if (o.joint_smoothing_hops > 0) {
      EXPECT_EQ(hops, o.joint_smoothing_hops);
      EXPECT_EQ(lu->Find("rule")->str, "fixed");
    } else {
      // The adaptive rule: a hop while Moran's I < joint_smoothing_min_morans_i
      // or the clustering still moves (agreement with the next hop's labels <
      // joint_smoothing_min_agreement); agreements are computed only when
      // Moran's I passes, and the last one is the stop unless hops ran out.
      EXPECT_EQ(lu->Find("rule")->str, "auto+agreement");
      const UnsValue* ag = lu->Find("agreements");
      ASSERT_NE(ag, nullptr);
      for (size_t i = 0; i + 1 < ag->floats.size(); ++i)
        EXPECT_LT(ag->floats[i], o.joint_smoothing_min_agreement);
      if (hops < o.joint_smoothing_max_auto_hops) {
        EXPECT_GE(lu->Find("morans_i_after")->f, o.joint_smoothing_min_morans_i);
        ASSERT_FALSE(ag->floats.empty());
        EXPECT_GE(ag->floats.back(), o.joint_smoothing_min_agreement);
      }
      if (hops == 0) {
        EXPECT_GE(lu->Find("morans_i_before")->f, o.joint_smoothing_min_morans_i);
      }
      // The labels the rule computed are the job's clusters: the same
      // clustering of the final embedding.
      ClusterOptions co = o.cluster;
      co.n_clusters = o.n_clusters;
      co.seed = o.seed;
      auto c = Cluster(r->joint, co);
      ASSERT_TRUE(c.ok()) << c.status();
      EXPECT_EQ(c->labels, r->clusters);
    }
    auto layout = DeriveLayoutNeighbours(r->spatial, n);
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_TRUE(layout->lattice);
    EXPECT_EQ(layout->k, 4);
    auto lk = SpatialKnn(r->spatial, n, 2, layout->k);
    ASSERT_TRUE(lk.ok());
    EXPECT_NEAR(MultivariateMoransI(ir->joint, *lk), lu->Find("morans_i_before")->f, 1e-4);
    auto a = NormalizedAdjacency(*lk, n, torch::kCPU);
    for (int64_t h = 0; h < hops; ++h) joint = torch::mm(a, joint);
    if (hops > 0) {
      ASSERT_FALSE(torch::equal(joint, ir->joint));
    }
    EXPECT_TRUE(torch::equal(joint, r->joint));
  }
}

TEST(PipelineTest, UnsupervisedSelectionPicksNoisierModalityAndMatchesShuffledSpots) {
  Inputs in = Small(20, 1);
  // Shuffle mod2's spots: matching by obs name must restore the order.
  auto shuffled = std::make_shared<AnnData>(*in.prot.adata);
  std::vector<int64_t> rev;
  for (int64_t i = shuffled->n_obs() - 1; i >= 0; --i) rev.push_back(i);
  shuffled->X = Subset(in.prot.adata->X, rev);
  shuffled->obsm["spatial"] = Subset(in.prot.adata->obsm.at("spatial"), rev);
  shuffled->obs.index.clear();
  for (int64_t i : rev) shuffled->obs.index.push_back(in.prot.adata->obs.index[i]);
  shuffled->obs.columns.clear();
  in.prot.adata = shuffled;
  PipelineOptions o = SmallOptions();
  auto r = RunPipeline(in.rna, in.prot, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->low_quality, "mod1");
  EXPECT_GT(metrics::AdjustedRandIndex(in.truth, r->clusters), 0.5);
}

TEST(PipelineTest, ErrorsNameTheField) {
  Inputs in = Small(20);
  PipelineOptions o = SmallOptions();
  o.n_clusters = 0;
  auto r = RunPipeline(in.rna, in.prot, o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("n_clusters"), std::string::npos);
  o.n_clusters = 401;
  EXPECT_EQ(RunPipeline(in.rna, in.prot, o).status().code(), absl::StatusCode::kInvalidArgument);

  o = SmallOptions();
  auto nospatial = std::make_shared<AnnData>(*in.prot.adata);
  nospatial->obsm.clear();
  auto m = RunPipeline(in.rna, {"prot", ModalityKind::kProtein, nospatial}, o);
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("obsm[\"spatial\"]"), std::string::npos);

  auto renamed = std::make_shared<AnnData>(*in.prot.adata);
  renamed->obs.index[0] = "not_a_spot";
  auto u = RunPipeline(in.rna, {"prot", ModalityKind::kProtein, renamed}, o);
  ASSERT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(u.status().message().find("1 of 400"), std::string::npos) << u.status();

  auto flat = std::make_shared<AnnData>(*in.prot.adata);
  std::fill(flat->X.values.begin(), flat->X.values.end(), 1.0f);
  auto z = RunPipeline(in.rna, {"prot", ModalityKind::kProtein, flat}, o);
  ASSERT_EQ(z.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(z.status().message().find("zero variance"), std::string::npos);

  o = SmallOptions();
  o.joint_smoothing_hops = kMaxJointSmoothingHops + 1;
  auto h = RunPipeline(in.rna, in.prot, o);
  ASSERT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find("joint_smoothing_hops"), std::string::npos) << h.status();
  o.joint_smoothing_hops = 0;
  o.joint_smoothing_min_agreement = 1.5;
  auto g = RunPipeline(in.rna, in.prot, o);
  ASSERT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("joint_smoothing_min_agreement"), std::string::npos) << g.status();
  o.joint_smoothing_min_agreement = 0.85;

  Inputs tiny = Small(4);  // 16 spots: fewer than feature_k = 20
  o.n_clusters = 2;
  auto t = RunPipeline(tiny.rna, tiny.prot, o);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("n_obs"), std::string::npos);
}

TEST(PipelineTest, FullJobDenoisesTheLowQualityEmbedding) {
  Inputs in = Small(20, 2);
  PipelineOptions o = SmallOptions();
  o.kind = JobKind::kFull;
  o.low_quality = LowQuality::kMod1;
  o.diffusion.max_epochs = 5;  // the seam is under test here, not the denoiser's accuracy
  o.diffusion.folds = 2;
  auto r = RunPipeline(in.rna, in.prot, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->denoised.defined());
  EXPECT_EQ(r->denoised.sizes(), r->emb_mod1.sizes());
  EXPECT_FALSE(torch::equal(r->denoised, r->emb_mod1));
  EXPECT_EQ(r->low_quality, "mod1");
  AnnData out = ResultToAnnData(*r);
  EXPECT_EQ(out.obsm.at("X_candies_denoised").n_cols, o.gae.rna_latent);
  bool has_stage = false;
  for (const auto& [name, s] : r->stage_seconds) has_stage |= name == "denoise";
  EXPECT_TRUE(has_stage);
}

std::string TempDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / absl::StrCat("candies_", name, "_", getpid());
  std::filesystem::remove_all(d);
  return d.string();
}

bool HasStage(const PipelineResult& r, const std::string& stage) {
  for (const auto& [name, s] : r.stage_seconds)
    if (name == stage) return true;
  return false;
}

TEST(PipelineTest, TrainedModelDenoisesANewSectionWithoutTraining) {
  Inputs a = Small(20, 4);
  PipelineOptions o = SmallOptions();
  o.kind = JobKind::kFull;
  o.low_quality = LowQuality::kMod1;
  o.diffusion.max_epochs = 5;
  o.diffusion.folds = 2;
  o.keep_trained_model = true;
  const std::string dir = TempDir("model");
  o.save_model_dir = dir;
  auto r = RunPipeline(a.rna, a.prot, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_NE(r->trained_model, nullptr);

  // The denoised expression matrix: the RNA features the GAE modelled, the
  // decoder's ZINB means (non-negative counts), the input counts in layers["raw"].
  ASSERT_NE(r->denoised_expression, nullptr);
  const AnnData& dx = *r->denoised_expression;
  const auto& features = r->trained_model->low_features;
  EXPECT_EQ(dx.obs.index, r->obs_names);
  EXPECT_EQ(dx.var.index, features);
  EXPECT_EQ(dx.X.n_rows, 400);
  EXPECT_EQ(dx.X.n_cols, static_cast<int64_t>(features.size()));
  for (float v : dx.X.values) ASSERT_TRUE(std::isfinite(v) && v >= 0);
  ASSERT_EQ(dx.layers.count("raw"), 1u);
  const Matrix& raw = dx.layers.at("raw");
  EXPECT_EQ(raw.n_rows, 400);
  EXPECT_EQ(raw.n_cols, dx.X.n_cols);
  // layers["raw"] holds the input values of the same gene for the same spot.
  const AnnData& rna = *a.rna.adata;
  int64_t col = -1;
  for (int64_t c = 0; c < rna.X.n_cols; ++c)
    if (rna.var.index[c] == features[0]) col = c;
  ASSERT_GE(col, 0);
  auto raw_t = MatrixToTensor(raw), in_t = MatrixToTensor(rna.X);
  EXPECT_TRUE(torch::allclose(raw_t.select(1, 0), in_t.select(1, col)));
  const UnsValue* du = r->uns.Find("denoise");
  ASSERT_NE(du, nullptr);
  ASSERT_NE(du->Find("losses"), nullptr);
  ASSERT_NE(du->Find("losses")->Find("fold2"), nullptr);
  EXPECT_EQ(du->Find("sampler")->str, "ddim");

  // Saved, loaded: the same size and the same outputs as the model in memory.
  auto loaded = LoadTrainedModel(dir, "cpu");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const TrainedModelInfo info = DescribeTrainedModel(**loaded);
  EXPECT_EQ(info.bytes, DescribeTrainedModel(*r->trained_model).bytes);
  EXPECT_GT(info.bytes, 0);
  EXPECT_EQ(info.low_quality, "mod1");
  EXPECT_EQ(info.low_kind, "rna");
  EXPECT_EQ(info.high_kind, "protein");

  // A second section of the same panel: no GAE for the low-quality modality, no
  // denoiser training; the result is the same from memory and from disk.
  Inputs b = Small(20, 5);
  PipelineOptions ob = SmallOptions();
  ob.kind = JobKind::kFull;
  ob.labels_key = "domain";
  ob.pretrained = r->trained_model;
  auto r1 = RunPipeline(b.rna, b.prot, ob);
  ASSERT_TRUE(r1.ok()) << r1.status();
  ob.pretrained = *loaded;
  auto r2 = RunPipeline(b.rna, b.prot, ob);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_TRUE(torch::equal(r1->denoised, r2->denoised));
  EXPECT_EQ(r1->clusters, r2->clusters);
  EXPECT_FALSE(HasStage(*r1, "gae_mod1"));
  EXPECT_FALSE(r1->emb_mod1.defined());
  EXPECT_EQ(r1->low_quality, "mod1");
  EXPECT_TRUE(r1->uns.Find("denoise")->Find("pretrained")->b);
  EXPECT_EQ(r1->denoised.size(0), 400);
  EXPECT_EQ(r1->denoised_expression->var.index, features);
  // The model's encoder carries over: the new section's protein, projected with
  // the saved loadings and encoded, still separates the domains.
  ClusterOptions km;
  km.method = ClusterMethod::kKmeans;
  km.n_clusters = 5;
  auto c2 = Cluster(r1->emb_mod2, km);
  ASSERT_TRUE(c2.ok());
  // (0.3: a 20x20 grid and 40 GAE epochs; a wrong projection gives ~0.)
  EXPECT_GT(metrics::AdjustedRandIndex(b.truth, c2->labels), 0.3);

  // Misuse is an error naming the problem.
  PipelineOptions swapped = ob;
  auto rs = RunPipeline(b.prot, b.rna, swapped);
  EXPECT_EQ(rs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(rs.status().message()).find("model"), std::string::npos);
  auto renamed = std::make_shared<AnnData>(*b.prot.adata);
  const std::string lost = renamed->var.index[0];
  renamed->var.index[0] = "not_a_protein";
  auto rm = RunPipeline(b.rna, {"prot", ModalityKind::kProtein, renamed}, ob);
  EXPECT_EQ(rm.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(rm.status().message()).find(lost), std::string::npos)
      << rm.status();
  PipelineOptions integ = ob;
  integ.kind = JobKind::kIntegrate;
  EXPECT_EQ(RunPipeline(b.rna, b.prot, integ).status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(LoadTrainedModel(TempDir("nomodel"), "cpu").status().code(), absl::StatusCode::kNotFound);
  const std::string other = TempDir("other");
  std::filesystem::create_directories(other);
  std::ofstream(std::filesystem::path(other) / "precious.txt") << "user data\n";
  EXPECT_EQ(SaveTrainedModel(*r->trained_model, other).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(other) / "precious.txt"));
  // Saving over an existing model replaces it.
  EXPECT_TRUE(SaveTrainedModel(*r->trained_model, dir).ok());
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(other);
}

TEST(PipelineTest, PcaLoadingsReproduceTheProjection) {
  torch::manual_seed(0);
  auto x = torch::randn({50, 8});
  x = x - x.mean(0, true);
  auto svd = torch::linalg_svd(x, /*full_matrices=*/false);
  auto v = std::get<2>(svd).slice(0, 0, 3).t();  // 8 x 3 principal axes
  auto f = torch::mm(x, v);
  auto got = PcaLoadings(x, f);
  EXPECT_TRUE(torch::allclose(got, v, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(torch::mm(x, got), f, 1e-4, 1e-4));
}

// The reverse direction of the paper's benchmark: a clean RNA and a noisy
// protein. Unsupervised selection must name the protein (mod2) low quality.
TEST(PipelineTest, UnsupervisedSelectionPicksANoisyProtein) {
  SimulatorOptions so;
  so.grid = 20;
  so.seed = 6;
  so.rna_noise_sd = 0.5;
  so.rna_dropout = 0.05;
  so.protein_noise_sd = 6;
  auto sim = Simulate(so);
  ASSERT_TRUE(sim.ok());
  ModalityInput rna{"rna", ModalityKind::kRna, std::make_shared<AnnData>(sim->rna)};
  ModalityInput prot{"prot", ModalityKind::kProtein, std::make_shared<AnnData>(sim->protein)};
  auto r = RunPipeline(rna, prot, SmallOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->low_quality, "mod2");
  EXPECT_GT(metrics::AdjustedRandIndex(sim->domain, r->clusters), 0.5);
}

// --preset paper runs end to end on a CPU: the authors' DiT (512/6/16), ancestral
// DDPM over every step, 3 folds. A smoke run: one epoch and T cut from 800 to 20
// (all 800 steps of the 75M-parameter DiT take ~10 min on a 2-core CPU; bench_speed
// --paper_full and the GPU run the whole thing).
TEST(PipelineTest, PaperPresetSmokeRun) {
  Inputs in = Small(12, 7);
  PipelineOptions o = PipelineOptions::FromPreset(Preset::kPaper);
  o.n_clusters = 5;
  o.device = TestDeviceName();
  o.low_quality = LowQuality::kMod1;
  o.preprocess.min_cells = 3;
  o.gae.epochs = 3;
  o.integration.epochs = 3;
  o.diffusion.max_epochs = 1;
  o.diffusion.timesteps = 20;
  auto r = RunPipeline(in.rna, in.prot, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->denoised.size(0), 144);
  EXPECT_TRUE(torch::isfinite(r->denoised).all().item<bool>());
  const UnsValue* du = r->uns.Find("denoise");
  ASSERT_NE(du, nullptr);
  EXPECT_EQ(du->Find("sampler")->str, "ddpm");
  EXPECT_EQ(du->Find("sample_steps")->i, 20);  // DDPM: every one of the T steps
  EXPECT_EQ(du->Find("hidden")->i, 512);
  EXPECT_EQ(du->Find("depth")->i, 6);
  EXPECT_EQ(du->Find("folds")->i, 3);
}

TEST(PipelineTest, CancelStopsTheJob) {
  Inputs in = Small(20);
  PipelineOptions o = SmallOptions();
  CancelToken cancel;
  int events = 0;
  auto r = RunPipeline(in.rna, in.prot, o,
                       [&](const ProgressEvent&) {
                         if (++events == 3) cancel.Cancel();
                       },
                       &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
}

TEST(PipelineTest, ParsersAndPresets) {
  EXPECT_EQ(*ParsePreset("paper"), Preset::kPaper);
  EXPECT_FALSE(ParsePreset("slow").ok());
  EXPECT_EQ(*ParseJobKind("integrate"), JobKind::kIntegrate);
  EXPECT_EQ(*ParseLowQuality("mod2"), LowQuality::kMod2);
  EXPECT_FALSE(ParseLowQuality("rna").ok());
  EXPECT_GT(PipelineOptions::FromPreset(Preset::kPaper).gae.epochs,
            PipelineOptions::FromPreset(Preset::kFast).gae.epochs);
}

}  // namespace
}  // namespace candies
