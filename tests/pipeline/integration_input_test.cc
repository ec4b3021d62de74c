#include "core/pipeline/integration_input.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/graph/graph.h"

namespace candies {
namespace {

// A 24 x 24 grid whose left and right halves differ in `signal` features, plus
// per-spot noise of sd `noise_sd`.
struct Section {
  std::vector<float> xy;
  torch::Tensor features;
};
Section Halves(double noise_sd) {
  Section s;
  const int side = 24;
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) s.xy.insert(s.xy.end(), {float(c), float(r)});
  const int64_t n = side * side;
  torch::manual_seed(11);
  s.features = noise_sd * torch::randn({n, 8});
  for (int64_t i = 0; i < n; ++i)
    if (s.xy[2 * i] >= side / 2) s.features[i] += 1.0;
  return s;
}

LazyLayoutGraph GraphOf(const Section& s) {
  return LazyLayoutGraph(s.xy, static_cast<int64_t>(s.xy.size() / 2));
}

TEST(IntegrationInputTest, AutoKeepsCoherentFeaturesAndFallsBackOnNoisyOnes) {
  PipelineOptions o;
  o.high_input = HighInput::kAuto;
  o.high_input_min_morans_i = 0.3;
  o.high_input_fallback = HighInput::kEmbedding;
  const Section clean = Halves(0.3), noisy = Halves(3.0);
  LazyLayoutGraph gc = GraphOf(clean), gn = GraphOf(noisy);
  auto c = ChooseHighInput(clean.features, gc, o, torch::kCPU);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->chosen, HighInput::kFeatures);
  EXPECT_GT(c->morans_i, 0.3);
  EXPECT_TRUE(torch::equal(c->features, clean.features));
  ASSERT_NE(c->uns.Find("chosen"), nullptr);
  EXPECT_EQ(c->uns.Find("chosen")->str, "features");
  EXPECT_EQ(c->uns.Find("layout_k")->i, 4) << "a square grid's own neighbourhood";

  auto d = ChooseHighInput(noisy.features, gn, o, torch::kCPU);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->chosen, HighInput::kEmbedding);
  EXPECT_LT(d->morans_i, 0.3);
  EXPECT_FALSE(d->features.defined()) << "the GAE embedding stays the input";
  EXPECT_NEAR(d->uns.Find("morans_i")->f, d->morans_i, 1e-12);
}

TEST(IntegrationInputTest, SmoothedAveragesOverTheLayoutNeighbourhood) {
  PipelineOptions o;
  o.high_input = HighInput::kSmoothed;
  const Section s = Halves(1.0);
  LazyLayoutGraph g = GraphOf(s);
  auto c = ChooseHighInput(s.features, g, o, torch::kCPU);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->chosen, HighInput::kSmoothed);
  auto knn = SpatialKnn(s.xy, s.features.size(0), 2, 4);
  ASSERT_TRUE(knn.ok());
  torch::Tensor expect = torch::mm(NormalizedAdjacency(*knn, s.features.size(0), torch::kCPU), s.features);
  EXPECT_TRUE(torch::allclose(c->features, expect, 1e-5, 1e-6));
  // Averaging removes per-spot noise: the smoothed features are more coherent.
  EXPECT_GT(MultivariateMoransI(c->features, *knn), MultivariateMoransI(s.features, *knn) + 0.2);
}

// The agreement half of the adaptive rule: a clean embedding keeps its labels
// under one hop (no hop, and the labels come back for reuse); pure noise never
// settles, so it hops to the limit, each agreement below the threshold.
TEST(IntegrationInputTest, SmoothJointHopsWhileTheClusteringStillMoves) {
  PipelineOptions o;
  o.joint_smoothing_min_morans_i = -1.0;  // Moran's I always passes: isolate the agreement rule
  ClusterOptions co;
  co.method = ClusterMethod::kKmeans;
  co.n_clusters = 2;
  co.seed = 3;
  const Section clean = Halves(0.2);
  LazyLayoutGraph g = GraphOf(clean);  // every section here has clean's layout
  auto c = SmoothJoint(clean.features, g, o, torch::kCPU, &co);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hops, 0);
  EXPECT_TRUE(torch::equal(c->joint, clean.features));
  auto direct = Cluster(clean.features, co);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(c->labels, direct->labels);
  ASSERT_NE(c->uns.Find("agreements"), nullptr);
  ASSERT_EQ(c->uns.Find("agreements")->floats.size(), 1u);
  EXPECT_GE(c->uns.Find("agreements")->floats[0], o.joint_smoothing_min_agreement);
  EXPECT_EQ(c->uns.Find("rule")->str, "auto+agreement");

  Section noise = Halves(0.0);
  torch::manual_seed(5);
  noise.features = torch::randn({noise.features.size(0), 8});
  co.n_clusters = 4;
  auto d = SmoothJoint(noise.features, g, o, torch::kCPU, &co);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->hops, o.joint_smoothing_max_auto_hops);
  const auto& ag = d->uns.Find("agreements")->floats;
  ASSERT_EQ(static_cast<int64_t>(ag.size()), o.joint_smoothing_max_auto_hops);
  for (double a : ag) EXPECT_LT(a, o.joint_smoothing_min_agreement);
  auto after = Cluster(d->joint, co);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(d->labels, after->labels);

  // Without cluster options (or with the agreement off) only Moran's I decides.
  auto e = SmoothJoint(noise.features, g, o, torch::kCPU);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->hops, 0);
  EXPECT_TRUE(e->labels.empty());
  EXPECT_EQ(e->uns.Find("rule")->str, "auto");
}

// The denoiser guard: the denoised embedding replaces its input only when it
// is at least as coherent across neighbouring spots (plus the margin).
TEST(IntegrationInputTest, LowInputKeepsTheEmbeddingWhenDenoisingLowersCoherence) {
  PipelineOptions o;
  const Section coherent = Halves(0.3), noisy = Halves(3.0);
  LazyLayoutGraph g = GraphOf(coherent);  // both sections share the layout
  auto worse = ChooseLowInput(coherent.features, noisy.features, g, o);
  ASSERT_TRUE(worse.ok()) << worse.status();
  EXPECT_FALSE(worse->use_denoised);
  EXPECT_GT(worse->morans_i_embedding, worse->morans_i_denoised);
  EXPECT_EQ(worse->uns.Find("chosen")->str, "embedding");
  EXPECT_NEAR(worse->uns.Find("morans_i_denoised")->f, worse->morans_i_denoised, 1e-12);

  auto better = ChooseLowInput(noisy.features, coherent.features, g, o);
  ASSERT_TRUE(better.ok()) << better.status();
  EXPECT_TRUE(better->use_denoised);
  EXPECT_EQ(better->uns.Find("chosen")->str, "denoised");
  // A margin larger than the gain keeps the embedding.
  o.denoised_min_morans_gain = better->morans_i_denoised - better->morans_i_embedding + 0.01;
  auto margin = ChooseLowInput(noisy.features, coherent.features, g, o);
  ASSERT_TRUE(margin.ok());
  EXPECT_FALSE(margin->use_denoised);

  o.denoised_input_guard = false;  // the paper's method: always the denoised embedding
  auto off = ChooseLowInput(coherent.features, noisy.features, g, o);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->use_denoised);
  EXPECT_TRUE(std::isnan(off->morans_i_embedding));

  o.denoised_input_guard = true;
  auto applied = ChooseLowInput(torch::Tensor(), noisy.features, g, o);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(applied->use_denoised) << "a model applied: the denoised embedding is the only one";
  EXPECT_EQ(applied->uns.Find("rule")->str, "model applied");
  auto rows = ChooseLowInput(coherent.features, noisy.features.slice(0, 0, 10), g, o);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("denoised"), std::string::npos);
}

// One job, one layout graph: the three rules read the same graph, built once,
// and a tensor whose rows do not match the coordinates is refused by name.
TEST(IntegrationInputTest, TheRulesShareOneLayoutGraph) {
  const Section coherent = Halves(0.3), noisy = Halves(3.0);
  LazyLayoutGraph g = GraphOf(coherent);
  PipelineOptions o;
  o.high_input = HighInput::kAuto;
  o.high_input_fallback = HighInput::kSmoothed;
  ASSERT_TRUE(ChooseHighInput(noisy.features, g, o, torch::kCPU).ok());
  ASSERT_TRUE(ChooseLowInput(noisy.features, coherent.features, g, o).ok());
  ASSERT_TRUE(SmoothJoint(coherent.features, g, o, torch::kCPU).ok());
  EXPECT_EQ(g.builds(), 1);
  auto short_rows = SmoothJoint(coherent.features.slice(0, 0, 100), g, o, torch::kCPU);
  ASSERT_FALSE(short_rows.ok());
  EXPECT_NE(short_rows.status().message().find("obsm[\"spatial\"]"), std::string::npos)
      << short_rows.status();
  // A layout that cannot give a graph fails every rule that needs it, once.
  LazyLayoutGraph two({0, 0, 1, 1}, 2);
  auto e1 = ChooseHighInput(noisy.features.slice(0, 0, 2), two, o, torch::kCPU);
  auto e2 = ChooseLowInput(noisy.features.slice(0, 0, 2), coherent.features.slice(0, 0, 2), two, o);
  ASSERT_FALSE(e1.ok());
  ASSERT_FALSE(e2.ok());
  EXPECT_EQ(e1.status(), e2.status());
  EXPECT_EQ(two.builds(), 1);
}

TEST(IntegrationInputTest, FixedChoicesNeedNoCoordinatesAndAutoFallbackMustBeFixed) {
  const Section s = Halves(1.0);
  PipelineOptions o;
  o.high_input = HighInput::kEmbedding;
  LazyLayoutGraph none({}, s.features.size(0));  // no coordinates at all
  auto e = ChooseHighInput(s.features, none, o, torch::kCPU);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->features.defined());
  EXPECT_EQ(none.builds(), 0) << "a fixed choice never reads the layout";
  o.high_input = HighInput::kAuto;
  o.high_input_fallback = HighInput::kAuto;
  LazyLayoutGraph g = GraphOf(s);
  auto bad = ChooseHighInput(s.features, g, o, torch::kCPU);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("high_input_fallback"), std::string::npos);
}

TEST(IntegrationInputTest, ParseNamesTheField) {
  EXPECT_EQ(*ParseHighInput("Auto"), HighInput::kAuto);
  EXPECT_EQ(*ParseHighInput("smoothed"), HighInput::kSmoothed);
  auto bad = ParseHighInput("pcs");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("high_input"), std::string::npos);
  for (HighInput h : {HighInput::kAuto, HighInput::kFeatures, HighInput::kEmbedding, HighInput::kSmoothed})
    EXPECT_EQ(*ParseHighInput(HighInputName(h)), h);
}

}  // namespace
}  // namespace candies
