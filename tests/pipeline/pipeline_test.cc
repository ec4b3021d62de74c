#include "core/pipeline/pipeline.h"

#include <memory>

#include <torch/torch.h>

#include "core/metrics/metrics.h"
#include "core/sim/simulator.h"
#include "gtest/gtest.h"

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
  o.device = "cpu";
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
