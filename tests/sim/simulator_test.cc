#include "core/sim/simulator.h"

#include <set>

#include "gtest/gtest.h"

namespace candies {
namespace {

TEST(SimulatorTest, ShapesAndLabels) {
  SimulatorOptions o;
  auto sim = Simulate(o);
  ASSERT_TRUE(sim.ok()) << sim.status();
  EXPECT_EQ(sim->rna.X.n_rows, 1296);
  EXPECT_EQ(sim->rna.X.n_cols, 800);
  EXPECT_EQ(sim->protein.X.n_rows, 1296);
  EXPECT_EQ(sim->protein.X.n_cols, 100);
  EXPECT_EQ(sim->rna.obsm.at("spatial").n_cols, 2);
  const Column* dom = sim->rna.obs.Find("domain");
  ASSERT_NE(dom, nullptr);
  EXPECT_EQ(dom->kind, Column::Kind::kCategorical);
  EXPECT_EQ(dom->categories.size(), 5u);
  std::set<int32_t> seen(sim->domain.begin(), sim->domain.end());
  EXPECT_EQ(seen.size(), 5u);
  int64_t counts[5] = {0, 0, 0, 0, 0};
  for (int32_t d : sim->domain) ++counts[d];
  for (int d = 1; d < 5; ++d) EXPECT_GT(counts[d], 80) << "domain " << d;
  for (float v : sim->rna.X.values) ASSERT_GE(v, 0.0f);
  EXPECT_EQ(sim->rna.obs.index, sim->protein.obs.index);
}

TEST(SimulatorTest, MarkersAreHigherInTheirDomain) {
  SimulatorOptions o;
  o.rna_noise_sd = 0;
  o.rna_dropout = 0;
  auto sim = Simulate(o);
  ASSERT_TRUE(sim.ok());
  // Genes 0..29 are background (domain 0) markers: mean bg*fold (+2 noise) there, bg (+2) elsewhere.
  double in = 0, out = 0;
  int64_t nin = 0, nout = 0;
  for (int64_t i = 0; i < sim->rna.X.n_rows; ++i) {
    double v = sim->rna.X.values[i * 800 + 3];
    if (sim->domain[i] == 0) { in += v; ++nin; } else { out += v; ++nout; }
  }
  EXPECT_NEAR(in / nin, o.rna_background_mean * o.rna_marker_fold + o.rna_noise_mean, 0.6);
  EXPECT_NEAR(out / nout, o.rna_background_mean + o.rna_noise_mean, 0.4);
}

TEST(SimulatorTest, DeterministicPerSeedAndScaled) {
  SimulatorOptions o;
  o.grid = 12;
  auto a = Simulate(o), b = Simulate(o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->rna.X.values, b->rna.X.values);
  EXPECT_EQ(a->protein.X.values, b->protein.X.values);
  o.seed = 7;
  auto c = Simulate(o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->rna.X.values, c->rna.X.values);
  o.scale = 3;
  auto d = Simulate(o);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->rna.X.n_rows, 36 * 36);
}

TEST(SimulatorTest, RejectsBadOptions) {
  SimulatorOptions o;
  o.rna_dropout = 1.5;
  auto s = Simulate(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("rna_dropout"), std::string::npos);
  o = SimulatorOptions();
  o.grid = 2;
  EXPECT_FALSE(Simulate(o).ok());
}

}  // namespace
}  // namespace candies
