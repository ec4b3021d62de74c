#include "core/preprocess/preprocess.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace candies {
namespace {

// A counts-like matrix with a few strongly variable genes (the first `n_var`),
// whose mean lies inside the range of the other genes' means, so the LOESS
// trend is interpolated there rather than bent to the variable genes.
Matrix MakeCounts(int64_t n, int64_t g, int64_t n_var, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(n * g);
  for (int64_t i = 0; i < n; ++i) {
    const bool high = i % 2 == 0;
    for (int64_t j = 0; j < g; ++j) {
      const double mean = j < n_var ? (high ? 39.0 : 1.0) : 1.0 + 3.0 * (j % 20);
      v[i * g + j] = static_cast<float>(std::poisson_distribution<int>(mean)(rng));
    }
  }
  return Matrix::Dense(n, g, std::move(v));
}

TEST(Preprocess, ParseModalityKind) {
  EXPECT_EQ(*ParseModalityKind("RNA"), ModalityKind::kRna);
  EXPECT_EQ(*ParseModalityKind("adt"), ModalityKind::kProtein);
  EXPECT_EQ(*ParseModalityKind("peaks"), ModalityKind::kAtac);
  auto bad = ParseModalityKind("dna");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("dna"), std::string::npos);
}

TEST(Preprocess, NormalizeTotalAndLog1pOnSparse) {
  Matrix m = ToCsr(Matrix::Dense(3, 3, {1, 0, 3, 0, 0, 0, 2, 2, 0}));
  ASSERT_TRUE(pp::NormalizeTotal(m, 100).ok());
  EXPECT_TRUE(m.is_sparse());
  Matrix d = ToDense(m);
  EXPECT_FLOAT_EQ(d.values[0], 25.0f);
  EXPECT_FLOAT_EQ(d.values[2], 75.0f);
  EXPECT_FLOAT_EQ(d.values[6], 50.0f);
  EXPECT_FLOAT_EQ(d.values[4], 0.0f);  // an all-zero row stays zero, no NaN
  pp::Log1p(m);
  EXPECT_FLOAT_EQ(ToDense(m).values[0], std::log1p(25.0f));
  // target_sum <= 0: the median of the positive totals (4 and 4 -> 4).
  Matrix m2 = Matrix::Dense(2, 2, {1, 3, 2, 2});
  ASSERT_TRUE(pp::NormalizeTotal(m2, 0).ok());
  EXPECT_FLOAT_EQ(m2.values[0] + m2.values[1], 4.0f);
}

TEST(Preprocess, Log1pIsSignPreservingForNegativeInput) {
  Matrix m = Matrix::Dense(1, 2, {-3.0f, 3.0f});
  pp::Log1p(m);
  EXPECT_FLOAT_EQ(m.values[0], -std::log1p(3.0f));
  EXPECT_FLOAT_EQ(m.values[1], std::log1p(3.0f));
}

TEST(Preprocess, FilterGenesDropsRareGenesEverywhere) {
  AnnData a;
  a.X = Matrix::Dense(4, 3, {1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0});
  a.obs.index = {"a", "b", "c", "d"};
  a.var.index = {"g0", "g1", "g2"};
  a.layers["counts"] = a.X;
  auto kept = pp::FilterGenes(a, 2);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, (std::vector<int64_t>{0}));
  EXPECT_EQ(a.X.n_cols, 1);
  EXPECT_EQ(a.layers["counts"].n_cols, 1);
  EXPECT_EQ(a.var.index, (std::vector<std::string>{"g0"}));
}

TEST(Preprocess, HvgSeuratV3FindsTheVariableGenes) {
  Matrix counts = MakeCounts(200, 60, 5, 1);
  auto hvg = pp::HighlyVariableGenesSeuratV3(counts, 5);
  ASSERT_TRUE(hvg.ok()) << hvg.status();
  EXPECT_EQ(*hvg, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  // Sparse input gives the same selection.
  auto hvg_sparse = pp::HighlyVariableGenesSeuratV3(ToCsr(counts), 5);
  ASSERT_TRUE(hvg_sparse.ok());
  EXPECT_EQ(*hvg, *hvg_sparse);
  // n_top_genes above n_vars is capped.
  EXPECT_EQ(pp::HighlyVariableGenesSeuratV3(counts, 1000)->size(), 60u);
}

TEST(Preprocess, ScaleGivesZeroMeanUnitSampleVarianceAndClips) {
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({50, 4}) * 3 + 7;
  x.select(1, 3).fill_(2.0);  // constant column
  torch::Tensor s = pp::Scale(x, 0);
  EXPECT_LT(s.mean(0).abs().max().item<float>(), 1e-5);
  EXPECT_NEAR(s.slice(1, 0, 3).std(0, true).mean().item<float>(), 1.0, 1e-4);
  EXPECT_EQ(s.select(1, 3).abs().max().item<float>(), 0.0f);
  // One outlier among n rows has z = sqrt(n - 1) at most: 1001 rows exceed 10.
  torch::Tensor outlier = torch::zeros({1001, 1});
  outlier[0][0] = 1000;
  EXPECT_FLOAT_EQ(pp::Scale(outlier, 10).max().item<float>(), 10.0f);
}

TEST(Preprocess, ClrMatchesMuonFormula) {
  Matrix m = Matrix::Dense(2, 3, {1, 2, 3, 0, 5, 10});
  torch::Tensor c = pp::Clr(m);
  for (int r = 0; r < 2; ++r) {
    double mean_log = 0;
    for (int j = 0; j < 3; ++j) mean_log += std::log1p(m.values[r * 3 + j]);
    const double g = std::exp(mean_log / 3);
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(c[r][j].item<float>(), std::log1p(m.values[r * 3 + j] / g), 1e-5);
    }
  }
}

TEST(Preprocess, TfIdfKeepsSparsityAndMatchesFormula) {
  Matrix m = ToCsr(Matrix::Dense(2, 2, {1, 0, 1, 3}));
  Matrix t = pp::TfIdf(m);
  ASSERT_TRUE(t.is_sparse());
  EXPECT_EQ(t.nnz(), 3);
  // Entry (1,1): tf = log1p(3/4 * 1e4), idf = log1p(2 / 3).
  EXPECT_NEAR(ToDense(t).values[3], std::log1p(7500.0) * std::log1p(2.0 / 3.0), 1e-3);
}

TEST(Preprocess, PcaMatchesExactSvdAndSparseEqualsDense) {
  torch::manual_seed(3);
  // Low-rank signal plus small noise: the top components are well separated.
  torch::Tensor x = torch::randn({120, 3}).mm(torch::randn({3, 40})) * 5 +
                    torch::randn({120, 40}) * 0.1;
  x = x.clamp_min(0);  // sparse-ish, as counts
  Matrix dense = TensorToMatrix(x);
  auto scores = pp::Pca(dense, 3, 7);
  ASSERT_TRUE(scores.ok()) << scores.status();
  torch::Tensor xc = (x - x.mean(0, true)).to(torch::kFloat64);
  auto [u, s, vt] = torch::linalg_svd(xc, false);
  torch::Tensor exact = (u.slice(1, 0, 3) * s.slice(0, 0, 3)).to(torch::kFloat32);
  // Same singular values (column norms) and the same subspace up to sign.
  for (int c = 0; c < 3; ++c) {
    torch::Tensor a = scores->select(1, c), b = exact.select(1, c);
    EXPECT_NEAR(a.norm().item<float>(), b.norm().item<float>(), 1e-2 * b.norm().item<float>());
    const float cos = (a * b).sum().item<float>() / (a.norm() * b.norm()).item<float>();
    EXPECT_GT(std::abs(cos), 0.999f);
  }
  auto sparse_scores = pp::Pca(ToCsr(dense), 3, 7);
  ASSERT_TRUE(sparse_scores.ok());
  EXPECT_TRUE(torch::allclose(*scores, *sparse_scores, 1e-3, 1e-2));
  // Determinism for a seed.
  EXPECT_TRUE(torch::equal(*scores, *pp::Pca(dense, 3, 7)));
  EXPECT_FALSE(pp::Pca(dense, 0, 7).ok());
}

TEST(Preprocess, PreprocessModalityRnaAndProtein) {
  AnnData a;
  a.X = ToCsr(MakeCounts(100, 50, 5, 2));
  for (int i = 0; i < 100; ++i) a.obs.index.push_back("s" + std::to_string(i));
  for (int j = 0; j < 50; ++j) a.var.index.push_back("g" + std::to_string(j));
  PreprocessOptions o;
  o.n_top_genes = 20;
  o.n_comps = 10;
  auto rna = PreprocessModality(a, ModalityKind::kRna, o);
  ASSERT_TRUE(rna.ok()) << rna.status();
  EXPECT_EQ(rna->expression.sizes(), (std::vector<int64_t>{100, 20}));
  EXPECT_EQ(rna->counts.sizes(), (std::vector<int64_t>{100, 20}));
  EXPECT_EQ(rna->features.sizes(), (std::vector<int64_t>{100, 10}));
  EXPECT_EQ(rna->feature_names.size(), 20u);
  EXPECT_EQ(rna->feature_names[0], "g0");  // the variable genes are selected
  auto prot = PreprocessModality(a, ModalityKind::kProtein, o);
  ASSERT_TRUE(prot.ok()) << prot.status();
  EXPECT_EQ(prot->expression.size(1), 50);
  EXPECT_TRUE(torch::isfinite(prot->features).all().item<bool>());
  auto atac = PreprocessModality(a, ModalityKind::kAtac, o);
  ASSERT_TRUE(atac.ok()) << atac.status();
  EXPECT_EQ(atac->features.size(0), 100);
}

TEST(Preprocess, PreprocessModalityRejectsBadInput) {
  AnnData a;
  a.X = Matrix::Dense(4, 2, std::vector<float>(8, 3.0f));
  a.obs.index = {"a", "b", "c", "d"};
  a.var.index = {"x", "y"};
  auto constant = PreprocessModality(a, ModalityKind::kProtein, {});
  ASSERT_FALSE(constant.ok());
  EXPECT_NE(constant.status().message().find("zero variance"), std::string::npos);
  a.X.values[3] = std::nanf("");
  auto nan = PreprocessModality(a, ModalityKind::kProtein, {});
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("NaN"), std::string::npos);
  AnnData tiny;
  tiny.X = Matrix::Dense(2, 2, {1, 2, 3, 4});
  EXPECT_FALSE(PreprocessModality(tiny, ModalityKind::kRna, {}).ok());
}

}  // namespace
}  // namespace candies
