// DescribeFile, the text `candies inspect` prints.
#include <string>

#include "core/io/describe.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

TEST(DescribeFile, ShapeLayoutSparsityAndKeys) {
  AnnData a;
  a.X = Matrix::Csr(2, 3, {0, 1, 2}, {0, 2}, {1, 2}, DType::kInt64);
  a.obs.index = {"a", "b"};
  a.var.index = {"x", "y", "z"};
  a.obs.Set(Column::Ints("n", {1, 2}));
  a.obsm["spatial"] = Matrix::Dense(2, 2, {0, 0, 1, 1});
  a.uns.Set("neighbors", UnsValue::Map());
  std::string path = std::string(CANDIES_BINARY_DIR) + "/tests/io/describe.h5ad";
  ASSERT_TRUE(WriteH5ad(a, path).ok());
  absl::StatusOr<std::string> text = DescribeFile(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("2 x 3, X int64 csr, sparsity 0.6667"), std::string::npos) << *text;
  EXPECT_NE(text->find("obs: [n]"), std::string::npos) << *text;
  EXPECT_NE(text->find("obsm: [spatial]"), std::string::npos) << *text;
  EXPECT_NE(text->find("uns: [neighbors]"), std::string::npos) << *text;
  absl::StatusOr<std::string> missing = DescribeFile(path + ".nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("file not found"), std::string::npos);
}

}  // namespace
}  // namespace candies
