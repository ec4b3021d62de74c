// Layouts anndata 0.8 cannot write, crafted with h5py by make_fixtures.py:
// anndata 0.7 (codes + __categories, h5sparse attrs, fixed-length strings) and
// 0.10/0.11 (nullable-integer, nullable-boolean, string-array).
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/io/h5ad.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

std::string Fixtures() {
  static const bool ran = [] {
    std::string d = std::string(CANDIES_BINARY_DIR) + "/tests/io/fixtures";
    std::string cmd = "mkdir -p '" + d + "' && '" + CANDIES_PYTHON + "' '" + CANDIES_SOURCE_DIR +
                      "/tests/io/make_fixtures.py' '" + d + "'";
    return std::system(cmd.c_str()) == 0;
  }();
  return ran ? std::string(CANDIES_BINARY_DIR) + "/tests/io/fixtures" : "";
}

TEST(Legacy, Anndata07) {
  ASSERT_FALSE(Fixtures().empty());
  absl::StatusOr<AnnData> a = ReadH5ad(Fixtures() + "/legacy07.h5ad");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->X.format, Matrix::Format::kCsr);
  EXPECT_EQ(a->X.n_rows, 6);
  EXPECT_EQ(a->obs.index[1], "cell1");
  const Column* ct = a->obs.Find("cell_type");
  ASSERT_NE(ct, nullptr);
  ASSERT_EQ(ct->kind, Column::Kind::kCategorical);
  EXPECT_EQ(ct->categories, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ct->ValueAsString(3), "c");
  ASSERT_NE(a->obs.Find("n_counts"), nullptr);
}

TEST(Legacy, Anndata011NullableAndStringArray) {
  ASSERT_FALSE(Fixtures().empty());
  absl::StatusOr<AnnData> a = ReadH5ad(Fixtures() + "/nullable011.h5ad");
  ASSERT_TRUE(a.ok()) << a.status();
  const Column* ni = a->obs.Find("ni");
  ASSERT_NE(ni, nullptr);
  ASSERT_EQ(ni->kind, Column::Kind::kFloat);  // has a missing value
  EXPECT_TRUE(std::isnan(ni->floats[2]));
  EXPECT_EQ(ni->floats[3], 4.0);
  const Column* nb = a->obs.Find("nb");
  ASSERT_NE(nb, nullptr);
  EXPECT_EQ(nb->kind, Column::Kind::kBool);
  EXPECT_EQ(nb->bools, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0}));
  EXPECT_EQ(a->obs.Find("s")->strings[5], "z");
  EXPECT_EQ(a->var.index[3], "gene3");
}

}  // namespace
}  // namespace candies
