// Reads .h5ad files written by the real anndata (Debian's 0.8) and a corrupt
// corpus derived from them; the Python fixture script runs once per process.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/io/h5ad.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

const std::string& FixtureDir() {
  static const std::string dir = [] {
    std::string d = std::string(CANDIES_BINARY_DIR) + "/tests/io/fixtures";
    std::string cmd = "mkdir -p '" + d + "' && '" + CANDIES_PYTHON + "' '" + CANDIES_SOURCE_DIR +
                      "/tests/io/make_fixtures.py' '" + d + "'";
    if (std::system(cmd.c_str()) != 0) return std::string();
    return d;
  }();
  return dir;
}

std::vector<float> ExpectedX() {
  std::ifstream in(FixtureDir() + "/X.txt");
  std::vector<float> v;
  double x;
  while (in >> x) v.push_back(static_cast<float>(x));
  return v;
}

void CheckCommon(const AnnData& a) {
  ASSERT_EQ(a.n_obs(), 6);
  ASSERT_EQ(a.n_vars(), 4);
  EXPECT_EQ(a.obs.index[2], "cell2");
  EXPECT_EQ(a.var.index[3], "gene3");
  const Column* ct = a.obs.Find("cell_type");
  ASSERT_NE(ct, nullptr);
  ASSERT_EQ(ct->kind, Column::Kind::kCategorical);
  EXPECT_EQ(ct->categories, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ct->codes, (std::vector<int32_t>{1, 0, 1, 2, 0, 1}));
  const Column* ng = a.obs.Find("n_genes");
  ASSERT_NE(ng, nullptr);
  EXPECT_EQ(ng->kind, Column::Kind::kInt);
  const Column* ok = a.obs.Find("is_ok");
  ASSERT_NE(ok, nullptr);
  ASSERT_EQ(ok->kind, Column::Kind::kBool);
  EXPECT_EQ(ok->bools, (std::vector<uint8_t>{1, 0, 1, 1, 0, 1}));
  const Column* label = a.obs.Find("label");
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->ValueAsString(4), "x4");
  ASSERT_EQ(a.obsm.count("spatial"), 1u);
  EXPECT_EQ(a.obsm.at("spatial").n_cols, 2);
  EXPECT_FLOAT_EQ(a.obsm.at("spatial").values[5], 5.0f);
  ASSERT_EQ(a.layers.count("counts"), 1u);
  EXPECT_EQ(a.layers.at("counts").format, Matrix::Format::kCsr);
  EXPECT_EQ(a.layers.at("counts").dtype, DType::kInt32);
  EXPECT_EQ(ToDense(a.layers.at("counts")).values, ExpectedX());
  // n_counts is the row sum of X.
  const Column* nc = a.obs.Find("n_counts");
  ASSERT_NE(nc, nullptr);
  Matrix dense = ToDense(a.X);
  for (int64_t i = 0; i < 6; ++i) {
    double s = 0;
    for (int64_t j = 0; j < 4; ++j) s += dense.values[i * 4 + j];
    EXPECT_DOUBLE_EQ(nc->floats[i], s);
  }
}

TEST(ReadH5ad, DenseFromAnndata) {
  ASSERT_FALSE(FixtureDir().empty());
  absl::StatusOr<AnnData> a = ReadH5ad(FixtureDir() + "/dense.h5ad");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->X.format, Matrix::Format::kDense);
  EXPECT_EQ(a->X.dtype, DType::kFloat32);
  EXPECT_EQ(a->X.values, ExpectedX());
  CheckCommon(*a);
  // uns written by anndata: string, integer, nested dicts, float and string arrays.
  const UnsValue* method = a->uns.Find("method");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->str, "candies");
  const UnsValue* n_pcs = a->uns.Find("n_pcs");
  ASSERT_NE(n_pcs, nullptr);
  EXPECT_EQ(n_pcs->kind, UnsValue::Kind::kInt);
  EXPECT_EQ(n_pcs->i, 30);
  const UnsValue* neighbors = a->uns.Find("neighbors");
  ASSERT_NE(neighbors, nullptr);
  const UnsValue* params = neighbors->Find("params");
  ASSERT_NE(params, nullptr);
  ASSERT_NE(params->Find("n_neighbors"), nullptr);
  EXPECT_EQ(params->Find("n_neighbors")->i, 15);
  ASSERT_NE(params->Find("metric"), nullptr);
  EXPECT_EQ(params->Find("metric")->str, "cosine");
  ASSERT_NE(params->Find("scale"), nullptr);
  EXPECT_DOUBLE_EQ(params->Find("scale")->f, 0.5);
  EXPECT_EQ(neighbors->Find("connectivities_key")->str, "connectivities");
  const UnsValue* pca = a->uns.Find("pca");
  ASSERT_NE(pca, nullptr);
  ASSERT_NE(pca->Find("variance_ratio"), nullptr);
  EXPECT_EQ(pca->Find("variance_ratio")->floats, (std::vector<double>{0.5, 0.25, 0.125}));
  const UnsValue* colors = a->uns.Find("cell_type_colors");
  ASSERT_NE(colors, nullptr);
  EXPECT_EQ(colors->strings, (std::vector<std::string>{"#1f77b4", "#ff7f0e", "#279e68"}));
}

TEST(ReadH5ad, CsrFromAnndata) {
  ASSERT_FALSE(FixtureDir().empty());
  absl::StatusOr<AnnData> a = ReadH5ad(FixtureDir() + "/csr.h5ad");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->X.format, Matrix::Format::kCsr);
  EXPECT_EQ(ToDense(a->X).values, ExpectedX());
  CheckCommon(*a);
}

TEST(ReadH5ad, CscFromAnndata) {
  ASSERT_FALSE(FixtureDir().empty());
  absl::StatusOr<AnnData> a = ReadH5ad(FixtureDir() + "/csc.h5ad");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->X.format, Matrix::Format::kCsc);
  EXPECT_EQ(a->X.dtype, DType::kFloat64);
  EXPECT_EQ(ToDense(a->X).values, ExpectedX());
  CheckCommon(*a);
}

struct CorruptCase {
  const char* file;
  const char* message;  // must appear in the status message
};

class CorruptTest : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(CorruptTest, FailsWithClearMessage) {
  ASSERT_FALSE(FixtureDir().empty());
  std::string path = FixtureDir() + "/" + GetParam().file;
  absl::StatusOr<AnnData> a = ReadH5ad(path);
  ASSERT_FALSE(a.ok());
  std::string msg(a.status().message());
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find(GetParam().message), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, CorruptTest,
    ::testing::Values(CorruptCase{"missing.h5ad", "file not found"},
                      CorruptCase{"random.h5ad", "not an HDF5 file"},
                      CorruptCase{"text.h5ad", "not an HDF5 file"},
                      CorruptCase{"truncated.h5ad", "corrupt"},
                      CorruptCase{"bad_indptr.h5ad", "/X/indptr: not monotone"},
                      CorruptCase{"bad_index.h5ad", "/X/indices: index 99 out of range"},
                      CorruptCase{"nan.h5ad", "/X: non-finite value"},
                      CorruptCase{"bad_encoding.h5ad", "unsupported encoding-type 'weird_matrix'"},
                      CorruptCase{"bad_rows.h5ad", "/X: shape 7 x 4 disagrees with obs x var 6 x 4"}));

TEST(ReadH5ad, NonFiniteAllowedWhenAsked) {
  ASSERT_FALSE(FixtureDir().empty());
  ReadOptions options;
  options.reject_non_finite = false;
  absl::StatusOr<AnnData> a = ReadH5ad(FixtureDir() + "/nan.h5ad", options);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(std::isnan(a->X.values[0]));
}

TEST(ReadH5ad, MaxElementBytesEnforced) {
  ASSERT_FALSE(FixtureDir().empty());
  ReadOptions options;
  options.limits.max_element_bytes = 8;
  absl::StatusOr<AnnData> a = ReadH5ad(FixtureDir() + "/dense.h5ad", options);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(std::string(a.status().message()).find("max_element_bytes"), std::string::npos);
}

}  // namespace
}  // namespace candies
