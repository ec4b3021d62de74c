#include "core/sim/families.h"

#include <cmath>
#include <set>

#include "gtest/gtest.h"
#include "core/graph/layout.h"

namespace candies {
namespace {

// Neighbours of each spot within `radius` (brute force; small layouts only).
std::vector<int> NeighbourCounts(const std::vector<float>& xy, double radius) {
  const size_t n = xy.size() / 2;
  std::vector<int> count(n, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j && std::hypot(xy[2 * i] - xy[2 * j], xy[2 * i + 1] - xy[2 * j + 1]) <= radius)
        ++count[i];
  return count;
}

TEST(FamiliesTest, HexLatticeHasSixNeighboursAndGridFour) {
  FamilySpec hex = *FindFamily("hex_visium_cortex");
  hex.n_spots = 900;
  const auto counts = NeighbourCounts(FamilyPositions(hex, 0), 1.05);
  int six = 0;
  for (int c : counts) {
    EXPECT_LE(c, 6);
    six += c == 6;
  }
  // Interior spots (all but the border rows and columns, ~4/30 of a 30 x 30 section).
  EXPECT_GT(six, 0.8 * counts.size());
  FamilySpec grid = *FindFamily("grid_shapes");
  grid.n_spots = 400;
  int four = 0;
  for (int c : NeighbourCounts(FamilyPositions(grid, 0), 1.05)) {
    EXPECT_LE(c, 4);
    four += c == 4;
  }
  EXPECT_EQ(four, 18 * 18);
}

// The layout rule (core/graph/layout.h) on the families' layouts.
TEST(FamiliesTest, LayoutRuleFindsTheLatticeNeighbours) {
  auto rule = [](const char* family, double jitter, double radius) {
    FamilySpec f = *FindFamily(family);
    f.jitter = jitter;
    const auto xy = FamilyPositions(f, 1);
    auto r = DeriveLayoutNeighbours(xy, static_cast<int64_t>(xy.size() / 2), radius);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : LayoutNeighbours{};
  };
  const auto grid = rule("grid_shapes", 0, 1.2);
  EXPECT_TRUE(grid.lattice);
  EXPECT_NEAR(grid.spacing, 1.0, 1e-6);
  EXPECT_EQ(grid.k, 4);
  EXPECT_EQ(rule("grid_shapes", 0, 1.5).k, 8);  // the diagonals at sqrt(2)
  const auto hex = rule("hex_visium_cortex", 0, 1.5);
  EXPECT_TRUE(hex.lattice);
  EXPECT_EQ(hex.k, 6);
  const auto uniform = rule("uniform_weak", 0, 1.2);
  EXPECT_FALSE(uniform.lattice);
  EXPECT_EQ(uniform.k, 6);
  EXPECT_FALSE(rule("cells_stereo", 0, 1.2).lattice);
  // Strong jitter makes a lattice irregular.
  EXPECT_FALSE(rule("hex_weak", 0.12, 1.2).lattice);
}

TEST(FamiliesTest, EveryFamilyHasItsDomainsOnEverySeed) {
  for (const auto& f : Families()) {
    for (uint64_t seed : {0, 1, 2}) {
      const auto xy = FamilyPositions(f, seed);
      const auto dom = FamilyDomains(f, xy, seed);
      ASSERT_EQ(dom.size() * 2, xy.size());
      EXPECT_NEAR(static_cast<double>(dom.size()), f.n_spots, 0.05 * f.n_spots) << f.name;
      std::vector<int64_t> count(f.n_domains, 0);
      for (int32_t d : dom) {
        ASSERT_GE(d, 0);
        ASSERT_LT(d, f.n_domains) << f.name;
        ++count[d];
      }
      for (int64_t d = 0; d < f.n_domains; ++d)
        EXPECT_GE(count[d], 5) << f.name << " seed " << seed << " domain " << d;
    }
  }
}

TEST(FamiliesTest, IslandsHoldOneToThreePercent) {
  const FamilySpec f = *FindFamily("grid_panel_islands");
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const auto dom = FamilyDomains(f, FamilyPositions(f, seed), seed);
    int64_t island = 0;
    for (int32_t d : dom) island += d == f.n_domains - 1;
    const double share = static_cast<double>(island) / dom.size();
    EXPECT_GE(share, 0.01) << seed;
    EXPECT_LE(share, 0.03) << seed;
  }
}

TEST(FamiliesTest, SplitAndCoverage) {
  int tuning = 0, held = 0;
  std::set<FamilyLayout> layouts;
  std::set<FamilyStructure> structures;
  std::set<std::string> kinds, names;
  std::set<int64_t> domains;
  for (const auto& f : Families()) {
    (f.held_out ? held : tuning)++;
    layouts.insert(f.layout);
    structures.insert(f.structure);
    kinds.insert(f.mod2.kind);
    domains.insert(f.n_domains);
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate " << f.name;
    EXPECT_FALSE(f.imitates.empty()) << f.name;
  }
  EXPECT_GE(tuning, 5);
  EXPECT_GE(held, 4);
  EXPECT_EQ(layouts.size(), 4u);
  EXPECT_EQ(structures.size(), 3u);
  EXPECT_TRUE(kinds.count("atac") && kinds.count("protein"));
  EXPECT_LE(*domains.begin(), 5);
  EXPECT_GE(*domains.rbegin(), 12);
  EXPECT_FALSE(FindFamily("no_such_family").ok());
}

TEST(FamiliesTest, DeterministicPerSeed) {
  const FamilySpec f = *FindFamily("grid_protein_noisy");
  auto a = SimulateFamily(f, 3), b = SimulateFamily(f, 3), c = SimulateFamily(f, 4);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->mod1.X.values, b->mod1.X.values);
  EXPECT_EQ(a->mod2.X.values, b->mod2.X.values);
  EXPECT_EQ(a->domain, b->domain);
  EXPECT_NE(a->mod1.X.values, c->mod1.X.values);
  EXPECT_EQ(a->mod1.obs.index, a->mod2.obs.index);
  EXPECT_EQ(a->mod1.X.n_cols, f.mod1.n_features);
  EXPECT_EQ(a->mod2.X.n_cols, f.mod2.n_features);
  for (float v : a->mod2.X.values) ASSERT_GE(v, 0.0f);
}

TEST(FamiliesTest, OutOfRangeSpecNamesTheField) {
  FamilySpec f = *FindFamily("grid_shapes");
  f.mod2.dropout = 1.5;
  auto r = SimulateFamily(f, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mod2.dropout"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace candies
