// UploadAssembler on UploadChunk messages alone: CSR blocks are counted by
// their real bytes and refused with duplicate or unsorted columns. A header
// declaring 2 x 1 under a 1 MiB limit used to store a 64 MB dataset (one row
// repeating column 0 eight million times).
#include "server/upload_assembler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace candies::server {
namespace {

v1::UploadChunk Header(int64_t n_obs, int64_t n_vars) {
  v1::UploadChunk c;
  c.mutable_header()->set_n_obs(n_obs);
  c.mutable_header()->set_n_vars(n_vars);
  for (int64_t i = 0; i < 2 * n_obs; ++i) c.mutable_header()->add_spatial(0);
  return c;
}

v1::UploadChunk Csr(std::vector<int64_t> indptr, std::vector<int32_t> indices) {
  v1::UploadChunk c;
  for (int64_t p : indptr) c.mutable_csr()->add_indptr(p);
  for (int32_t j : indices) {
    c.mutable_csr()->add_indices(j);
    c.mutable_csr()->add_values(1.0f);
  }
  return c;
}

TEST(UploadAssembler, DuplicateColumnsAreRefusedNamingTheRow) {
  UploadAssembler a({int64_t{1} << 20, 64});
  ASSERT_TRUE(a.Add(Header(2, 1)).ok());
  ASSERT_TRUE(a.Add(Csr({0, 1}, {0})).ok());
  // Block 1, its row 0 (row 1 of the matrix): column 0 three times.
  absl::Status st = a.Add(Csr({0, 3}, {0, 0, 0}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("column 0 appears twice at csr block 1 row 0 (row 1 of the matrix)"),
            std::string::npos) << st;
}

TEST(UploadAssembler, UnsortedColumnsAreRefused) {
  UploadAssembler a({int64_t{1} << 20, 64});
  ASSERT_TRUE(a.Add(Header(1, 3)).ok());
  absl::Status st = a.Add(Csr({0, 2}, {2, 0}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("column 0 after a larger one at csr block 0 row 0 (row 0 of the matrix) (columns must be sorted)"),
            std::string::npos) << st;
}

TEST(UploadAssembler, CsrRealBytesCountAgainstTheLimitAsBlocksArrive) {
  // 3 x 8 declares 96 dense bytes; full CSR rows cost 8 bytes per entry.
  UploadAssembler a({100, 64});
  ASSERT_TRUE(a.Add(Header(3, 8)).ok());
  EXPECT_EQ(a.declared_bytes(), 96);
  ASSERT_TRUE(a.Add(Csr({0, 2}, {0, 5})).ok());  // 16 + 16 bytes
  EXPECT_EQ(a.wire_bytes(), 32);
  // One full row: 64 + 16 more = 112 > 100, refused before it is kept.
  absl::Status st = a.Add(Csr({0, 8}, {0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_NE(st.message().find("csr block 1: 112 bytes received"), std::string::npos) << st;
  EXPECT_EQ(a.wire_bytes(), 32);
}

TEST(UploadAssembler, SortedUniqueCsrAssembles) {
  UploadAssembler a({int64_t{1} << 20, 64});
  ASSERT_TRUE(a.Add(Header(2, 3)).ok());
  ASSERT_TRUE(a.Add(Csr({0, 2, 3}, {0, 2, 1})).ok());
  absl::StatusOr<AssembledUpload> up = a.Finish();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->adata.X.indices, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(up->adata.X.indptr, (std::vector<int64_t>{0, 2, 3}));
}

v1::UploadChunk Rows(std::vector<float> values) {
  v1::UploadChunk c;
  for (float v : values) c.mutable_rows()->add_values(v);
  return c;
}

TEST(UploadAssembler, NonFiniteValuesAreRefusedNamingTheBlock) {
  UploadAssembler dense({int64_t{1} << 20, 64});
  ASSERT_TRUE(dense.Add(Header(2, 2)).ok());
  ASSERT_TRUE(dense.Add(Rows({1, 2})).ok());
  absl::Status st = dense.Add(Rows({3, std::nanf("")}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("rows.values"), std::string::npos) << st;
  EXPECT_NE(st.message().find("has NaN or Inf (block 1, value 1)"), std::string::npos) << st;

  UploadAssembler csr({int64_t{1} << 20, 64});
  ASSERT_TRUE(csr.Add(Header(1, 2)).ok());
  v1::UploadChunk c = Csr({0, 2}, {0, 1});
  c.mutable_csr()->set_values(0, -INFINITY);
  st = csr.Add(c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("csr.values"), std::string::npos) << st;
  EXPECT_NE(st.message().find("(block 0, value 0)"), std::string::npos) << st;
}

TEST(UploadAssembler, DenseRowsAssemble) {
  UploadAssembler a({int64_t{1} << 20, 64});
  ASSERT_TRUE(a.Add(Header(2, 2)).ok());
  ASSERT_TRUE(a.Add(Rows({1, 2})).ok());
  ASSERT_TRUE(a.Add(Rows({3, 4})).ok());
  absl::StatusOr<AssembledUpload> up = a.Finish();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->adata.X.values, (std::vector<float>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace candies::server
