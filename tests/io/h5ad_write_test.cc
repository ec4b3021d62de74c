// Round trips through WriteH5ad / ReadH5ad, and Python anndata reading what
// candies wrote (warnings are errors there).
#include <cstdlib>
#include <string>
#include <vector>

#include "core/io/h5ad.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

AnnData Example(Matrix::Format format, DType dtype) {
  AnnData a;
  Matrix x = Matrix::Csr(3, 4, {0, 2, 3, 6}, {0, 3, 2, 0, 1, 3}, {1, 2, 3, 4, 5, 6}, dtype);
  a.X = format == Matrix::Format::kDense ? ToDense(x) : x;
  a.X.dtype = dtype;
  if (format == Matrix::Format::kCsc) {
    // Build CSC by hand: columns of the same matrix.
    a.X = Matrix();
    a.X.format = Matrix::Format::kCsc;
    a.X.n_rows = 3;
    a.X.n_cols = 4;
    a.X.dtype = dtype;
    a.X.indptr = {0, 2, 3, 4, 6};
    a.X.indices = {0, 2, 2, 1, 0, 2};
    a.X.values = {1, 4, 5, 3, 2, 6};
  }
  a.obs.index = {"c0", "c1", "c2"};
  a.var.index = {"g0", "g1", "g2", "g3"};
  a.obs.Set(Column::Categorical("cluster", {"b", "a", "b"}));
  a.obs.Set(Column::Strings("name", {"x", "y", "z"}));
  a.obs.Set(Column::Floats("score", {0.25, 0.5, -1.0}));
  a.obs.Set(Column::Ints("count", {1, 2, 3}));
  Column flag;
  flag.name = "flag";
  flag.kind = Column::Kind::kBool;
  flag.bools = {1, 0, 1};
  a.obs.Set(flag);
  a.obsm["spatial"] = Matrix::Dense(3, 2, {0, 1, 2, 3, 4, 5}, DType::kFloat64);
  a.layers["dense"] = ToDense(x);
  a.layers["dense"].dtype = DType::kFloat64;
  a.obsp["distances"] = Matrix::Csr(3, 3, {0, 1, 1, 2}, {1, 0}, {0.5f, 2.0f});
  a.varm["loadings"] = Matrix::Dense(4, 1, {1, 2, 3, 4});
  a.uns.Set("method", UnsValue::String("candies"));
  UnsValue params = UnsValue::Map();
  params.Set("k", UnsValue::Int(10));
  params.Set("alpha", UnsValue::Float(0.25));
  params.Set("on", UnsValue::Bool(true));
  params.Set("names", UnsValue::StringArray({"p", "q"}));
  params.Set("w", UnsValue::FloatArray({1.5, 2.5}));
  a.uns.Set("params", params);
  return a;
}

std::string TmpPath(const std::string& name) {
  return std::string(CANDIES_BINARY_DIR) + "/tests/io/" + name;
}

void ExpectSameMatrix(const Matrix& a, const Matrix& b) {
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.n_rows, b.n_rows);
  EXPECT_EQ(a.n_cols, b.n_cols);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.indptr, b.indptr);
  EXPECT_EQ(a.indices, b.indices);
}

class RoundTrip
    : public ::testing::TestWithParam<std::tuple<Matrix::Format, DType>> {};

TEST_P(RoundTrip, WriteThenRead) {
  AnnData a = Example(std::get<0>(GetParam()), std::get<1>(GetParam()));
  std::string path = TmpPath("roundtrip.h5ad");
  ASSERT_TRUE(WriteH5ad(a, path).ok());
  absl::StatusOr<AnnData> b = ReadH5ad(path);
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectSameMatrix(a.X, b->X);
  EXPECT_EQ(b->obs.index, a.obs.index);
  EXPECT_EQ(b->var.index, a.var.index);
  ASSERT_EQ(b->obs.columns.size(), a.obs.columns.size());
  for (size_t i = 0; i < a.obs.columns.size(); ++i) {
    const Column& x = a.obs.columns[i];
    const Column& y = b->obs.columns[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.kind, y.kind);
    for (int64_t r = 0; r < x.size(); ++r) EXPECT_EQ(x.ValueAsString(r), y.ValueAsString(r));
  }
  EXPECT_EQ(b->obs.Find("cluster")->categories, (std::vector<std::string>{"a", "b"}));
  for (const char* key : {"spatial"}) ExpectSameMatrix(a.obsm.at(key), b->obsm.at(key));
  ExpectSameMatrix(a.layers.at("dense"), b->layers.at("dense"));
  ExpectSameMatrix(a.obsp.at("distances"), b->obsp.at("distances"));
  ExpectSameMatrix(a.varm.at("loadings"), b->varm.at("loadings"));
  ASSERT_NE(b->uns.Find("method"), nullptr);
  EXPECT_EQ(b->uns.Find("method")->str, "candies");
  const UnsValue* params = b->uns.Find("params");
  ASSERT_NE(params, nullptr);
  EXPECT_EQ(params->Find("k")->i, 10);
  EXPECT_EQ(params->Find("alpha")->f, 0.25);
  EXPECT_EQ(params->Find("on")->kind, UnsValue::Kind::kBool);
  EXPECT_TRUE(params->Find("on")->b);
  EXPECT_EQ(params->Find("names")->strings, (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(params->Find("w")->floats, (std::vector<double>{1.5, 2.5}));
}

INSTANTIATE_TEST_SUITE_P(
    Formats, RoundTrip,
    ::testing::Combine(::testing::Values(Matrix::Format::kDense, Matrix::Format::kCsr,
                                         Matrix::Format::kCsc),
                       ::testing::Values(DType::kFloat32, DType::kFloat64, DType::kInt32,
                                         DType::kInt64, DType::kUInt32)));

TEST(WriteH5ad, AnndataReadsIt) {
  AnnData a = Example(Matrix::Format::kCsr, DType::kInt32);
  std::string path = TmpPath("for_python.h5ad");
  absl::Status st = WriteH5ad(a, path);
  ASSERT_TRUE(st.ok()) << st;
  std::string cmd = std::string("'") + CANDIES_PYTHON + "' '" + CANDIES_SOURCE_DIR +
                    "/tests/io/check_written.py' '" + path + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(WriteH5ad, RejectsInconsistentShapes) {
  AnnData a = Example(Matrix::Format::kDense, DType::kFloat32);
  a.obs.index.pop_back();
  std::string path = TmpPath("bad_shape.h5ad");
  std::remove(path.c_str());
  absl::Status st = WriteH5ad(a, path);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("X"), std::string::npos);
  EXPECT_FALSE(ReadH5ad(path).ok());  // nothing left under the final name
}

}  // namespace
}  // namespace candies
