// Marker features (core/analysis/rank_genes_groups) against scanpy 1.9.6's
// rank_genes_groups(method="wilcoxon", tie_correct=True) on the fixed input in
// reference.txt (written by make_reference.py), and the uns layout read back by
// our reader and by Python's anndata.
#include "core/analysis/rank_genes_groups.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/io/h5ad.h"

namespace candies {
namespace {

struct Expected {
  std::string name;
  double score, pval, pval_adj, lfc;
};

struct Reference {
  int64_t n = 0, g = 0;
  std::vector<std::string> genes, groups;
  std::vector<float> counts;
  std::map<std::string, std::vector<Expected>> result;  // group -> best first
};

Reference LoadReference() {
  Reference ref;
  std::ifstream in(std::string(CANDIES_SOURCE_DIR) + "/tests/analysis/reference.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string tag;
    ss >> tag;
    if (tag == "shape") {
      ss >> ref.n >> ref.g;
    } else if (tag == "genes" || tag == "groups") {
      std::string s;
      while (ss >> s) (tag == "genes" ? ref.genes : ref.groups).push_back(s);
    } else if (tag == "counts") {
      float v;
      while (ss >> v) ref.counts.push_back(v);
    } else if (tag == "result") {
      std::string group;
      int rank;
      Expected e;
      ss >> group >> rank >> e.name >> e.score >> e.pval >> e.pval_adj >> e.lfc;
      ref.result[group].push_back(e);
    }
  }
  return ref;
}

void ExpectRel(double got, double want, double rel, const std::string& what) {
  EXPECT_NEAR(got, want, rel * std::max(std::fabs(want), 1e-300)) << what;
}

class RankGenesGroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ref_ = LoadReference();
    ASSERT_EQ(ref_.counts.size(), static_cast<size_t>(ref_.n * ref_.g));
    ASSERT_EQ(ref_.result.size(), 4u);
    groups_ = Column::Categorical("domain", ref_.groups);
  }

  RankGenesGroupsResult Run(const Matrix& counts) {
    bool normalized = false;
    Matrix x = LogNormalizeCounts(counts, kMarkerTargetSum, &normalized);
    EXPECT_TRUE(normalized);
    auto r = RankGenesGroups(x, ref_.genes, groups_.codes, groups_.categories, "domain");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RankGenesGroupsResult{};
  }

  void ExpectMatchesScanpy(const RankGenesGroupsResult& r) {
    ASSERT_EQ(r.groups.size(), ref_.result.size());
    for (const GroupMarkers& m : r.groups) {
      const std::vector<Expected>& want = ref_.result.at(m.group);
      ASSERT_EQ(m.names.size(), want.size());
      for (size_t k = 0; k < 10; ++k) EXPECT_EQ(m.names[k], want[k].name) << m.group << " #" << k;
      std::map<std::string, size_t> at;
      for (size_t k = 0; k < m.names.size(); ++k) at[m.names[k]] = k;
      for (const Expected& e : want) {
        const size_t k = at.at(e.name);
        const std::string what = m.group + "/" + e.name;
        ExpectRel(m.pvals[k], e.pval, 1e-6, what + " pval");
        ExpectRel(m.pvals_adj[k], e.pval_adj, 1e-6, what + " pval_adj");
        // scanpy stores scores and log fold changes as float32.
        EXPECT_NEAR(m.scores[k], e.score, 1e-6 * std::fabs(e.score) + 1e-6) << what;
        EXPECT_NEAR(m.logfoldchanges[k], e.lfc, 1e-6 * std::fabs(e.lfc) + 1e-5) << what;
      }
    }
  }

  Reference ref_;
  Column groups_;
};

TEST_F(RankGenesGroupsTest, DenseMatchesScanpy) {
  ExpectMatchesScanpy(Run(Matrix::Dense(ref_.n, ref_.g, ref_.counts)));
}

TEST_F(RankGenesGroupsTest, CsrAndCscMatchScanpy) {
  Matrix csr = ToCsr(Matrix::Dense(ref_.n, ref_.g, ref_.counts));
  ExpectMatchesScanpy(Run(csr));
  // CSC: transpose of the CSR of the transpose.
  std::vector<float> t(ref_.counts.size());
  for (int64_t i = 0; i < ref_.n; ++i)
    for (int64_t j = 0; j < ref_.g; ++j) t[j * ref_.n + i] = ref_.counts[i * ref_.g + j];
  Matrix csc = ToCsr(Matrix::Dense(ref_.g, ref_.n, t));
  csc.format = Matrix::Format::kCsc;
  std::swap(csc.n_rows, csc.n_cols);
  ExpectMatchesScanpy(Run(csc));
}

TEST_F(RankGenesGroupsTest, ConstantFeatureScoresZero) {
  RankGenesGroupsResult r = Run(Matrix::Dense(ref_.n, ref_.g, ref_.counts));
  for (const GroupMarkers& m : r.groups) {
    size_t k = 0;
    while (m.names[k] != "gene59") ++k;
    EXPECT_EQ(m.scores[k], 0.0);
    EXPECT_EQ(m.pvals[k], 1.0);
  }
}

TEST_F(RankGenesGroupsTest, TinyGroupIsAnErrorNamingIt) {
  std::vector<std::string> labels = ref_.groups;
  labels[0] = "lonely";
  Column c = Column::Categorical("domain", labels);
  auto r = RankGenesGroups(Matrix::Dense(ref_.n, ref_.g, ref_.counts), ref_.genes, c.codes,
                           c.categories, "domain");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("group 'lonely' has 1 of 150"),
            std::string::npos) << r.status();
}

TEST_F(RankGenesGroupsTest, NonCountsAreLeftAlone) {
  Matrix x = Matrix::Dense(2, 2, {0.5f, 1.0f, 2.0f, 0.0f});
  bool normalized = true;
  Matrix y = LogNormalizeCounts(x, kMarkerTargetSum, &normalized);
  EXPECT_FALSE(normalized);
  EXPECT_EQ(y.values, x.values);
}

TEST_F(RankGenesGroupsTest, UnsRoundTripsThroughH5adAndAnndata) {
  RankGenesGroupsResult r = Run(ToCsr(Matrix::Dense(ref_.n, ref_.g, ref_.counts)));
  AnnData a;
  a.has_x = false;
  for (int64_t i = 0; i < ref_.n; ++i) a.obs.index.push_back("c" + std::to_string(i));
  a.obs.Set(groups_);
  a.var.index = ref_.genes;
  a.uns = UnsValue::Map();
  a.uns.Set("rank_genes_groups", RankGenesGroupsToUns(r));
  const std::string path = ::testing::TempDir() + "/rank_genes_groups.h5ad";
  ASSERT_TRUE(WriteH5ad(a, path).ok());

  auto back = ReadH5ad(path);
  ASSERT_TRUE(back.ok()) << back.status();
  const UnsValue* u = back->uns.Find("rank_genes_groups");
  ASSERT_NE(u, nullptr);
  EXPECT_TRUE(u->Find("scores")->children[0].second.single);
  auto parsed = RankGenesGroupsFromUns(*u, 10);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->groupby, "domain");
  ASSERT_EQ(parsed->groups.size(), r.groups.size());
  for (size_t k = 0; k < r.groups.size(); ++k) {
    EXPECT_EQ(parsed->groups[k].group, r.groups[k].group);
    ASSERT_EQ(parsed->groups[k].names.size(), 10u);
    for (size_t j = 0; j < 10; ++j) {
      EXPECT_EQ(parsed->groups[k].names[j], r.groups[k].names[j]);
      EXPECT_EQ(parsed->groups[k].pvals[j], r.groups[k].pvals[j]);
    }
  }

  // Python's anndata reads the rec-arrays (and scanpy's rank_genes_groups_df when present).
  std::string cmd = std::string(CANDIES_PYTHON) + " " + CANDIES_SOURCE_DIR +
                    "/tests/analysis/check_uns.py " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ASSERT_EQ(pclose(p), 0) << out;
  for (const GroupMarkers& m : r.groups)
    EXPECT_NE(out.find(m.group + " " + m.names[0] + " "), std::string::npos) << out;
}

}  // namespace
}  // namespace candies
