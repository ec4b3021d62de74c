// Matrix helpers in core/io/anndata.cc: layout conversions and subsetting.
#include <vector>

#include "core/io/anndata.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

// 3 x 4: [[1 0 0 2] [0 0 3 0] [4 5 0 6]]
Matrix Example() {
  return Matrix::Csr(3, 4, {0, 2, 3, 6}, {0, 3, 2, 0, 1, 3}, {1, 2, 3, 4, 5, 6});
}

TEST(Matrix, ToDenseAndBackToCsr) {
  Matrix d = ToDense(Example());
  EXPECT_EQ(d.values, (std::vector<float>{1, 0, 0, 2, 0, 0, 3, 0, 4, 5, 0, 6}));
  Matrix c = ToCsr(d);
  EXPECT_EQ(c.format, Matrix::Format::kCsr);
  EXPECT_EQ(c.indptr, Example().indptr);
  EXPECT_EQ(c.indices, Example().indices);
  EXPECT_EQ(c.values, Example().values);
}

TEST(Matrix, CscToCsrKeepsValues) {
  Matrix csc;
  csc.format = Matrix::Format::kCsc;
  csc.n_rows = 3;
  csc.n_cols = 4;
  csc.indptr = {0, 2, 3, 4, 6};
  csc.indices = {0, 2, 2, 1, 0, 2};
  csc.values = {1, 4, 5, 3, 2, 6};
  EXPECT_EQ(ToDense(csc).values, ToDense(Example()).values);
  EXPECT_EQ(ToCsr(csc).values, Example().values);
}

TEST(Matrix, SubsetRowsAndColumnsStaysSparse) {
  Matrix s = Subset(Example(), {2, 0}, {3, 0});
  EXPECT_EQ(s.format, Matrix::Format::kCsr);
  EXPECT_EQ(ToDense(s).values, (std::vector<float>{6, 4, 2, 1}));
  Matrix d = Subset(ToDense(Example()), {1}, {});
  EXPECT_EQ(d.values, (std::vector<float>{0, 0, 3, 0}));
}

}  // namespace
}  // namespace candies
