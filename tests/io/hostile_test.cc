// The reader on crafted files (tests/io/make_hostile.py): every size a file
// declares is bounded before allocation, raw data outside the file is refused,
// and no C++ exception escapes. Each case failed on the unhardened reader
// (read 1.2 GB, read another file, or aborted with an uncaught exception).
#include <cstdlib>
#include <string>

#include "core/io/h5ad.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

const std::string& HostileDir() {
  static const std::string dir = [] {
    std::string d = std::string(CANDIES_BINARY_DIR) + "/tests/io/hostile";
    std::string cmd = "'" + std::string(CANDIES_PYTHON) + "' '" + CANDIES_SOURCE_DIR +
                      "/tests/io/make_hostile.py' '" + d + "'";
    if (std::system(cmd.c_str()) != 0) return std::string();
    return d;
  }();
  return dir;
}

struct HostileCase {
  const char* file;
  const char* expected;  // substring of the error: the element and the problem
};

class Hostile : public ::testing::TestWithParam<HostileCase> {};

TEST_P(Hostile, RefusedWithTheElementNamed) {
  ASSERT_FALSE(HostileDir().empty());
  const std::string path = HostileDir() + "/" + GetParam().file;
  absl::StatusOr<AnnData> a = ReadH5ad(path);
  ASSERT_FALSE(a.ok()) << GetParam().file << " was accepted";
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << a.status();
  const std::string msg(a.status().message());
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(GetParam().expected), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, Hostile,
    ::testing::Values(
        // Was: 1.2 GB of fill values allocated and read from a 10 KB file.
        HostileCase{"unallocated_x.h5ad", "/X: declares 1.2e+09 bytes but the file stores only 0"},
        // Was: std::length_error (abort).
        HostileCase{"huge_index.h5ad", "/obs/_index: has more than ReadLimits::max_elements"},
        // Was: std::out_of_range (abort).
        HostileCase{"null_scalar.h5ad", "/uns/n_pcs: scalar without a value"},
        // Was: std::bad_alloc (abort).
        HostileCase{"string_overflow.h5ad", "/obs/_index: has more than ReadLimits::max_elements"},
        // Was: X read from a text file outside the .h5ad.
        HostileCase{"external_storage.h5ad", "/X: raw data stored in an external file"},
        // Was: obs read from another HDF5 file.
        HostileCase{"external_link.h5ad", "/obs: links to another file"},
        // Was: X read from another HDF5 file.
        HostileCase{"virtual.h5ad", "/X: virtual or unknown dataset layout"},
        // Was: accepted (duplicate entries summed or not, depending on the consumer).
        HostileCase{"csr_duplicate.h5ad", "/X/indices: duplicate index 2 in row 1"},
        HostileCase{"csr_indptr_start.h5ad", "/X/indptr: must start at 0 and end at nnz"},
        // Was: accepted; a later densify would allocate 2^40 columns.
        HostileCase{"csr_huge_minor.h5ad", "/obsm/wide: shape 1 x 1099511627776 exceeds"}),
    [](const auto& info) {
      std::string name = info.param.file;
      return name.substr(0, name.find('.'));
    });

TEST(HostileLimits, UnsortedRowsAreSortedWithTheirValues) {
  ASSERT_FALSE(HostileDir().empty());
  absl::StatusOr<AnnData> a = ReadH5ad(HostileDir() + "/csr_unsorted.h5ad");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->X.indices, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(a->X.values, (std::vector<float>{7, 5, 9}));
}

absl::Status ReadGoodWith(void (*set)(ReadLimits*)) {
  ReadOptions options;
  set(&options.limits);
  return ReadH5ad(HostileDir() + "/good_small.h5ad", options).status();
}

TEST(HostileLimits, EachNamedLimitIsEnforced) {
  ASSERT_FALSE(HostileDir().empty());
  ASSERT_TRUE(ReadGoodWith([](ReadLimits*) {}).ok());
  absl::Status st = ReadGoodWith([](ReadLimits* l) { l->max_string_bytes = 1; });
  EXPECT_NE(st.message().find("/obs/_index: string 0 is longer than ReadLimits::max_string_bytes"),
            std::string::npos) << st;
  st = ReadGoodWith([](ReadLimits* l) { l->max_total_bytes = 100; });
  EXPECT_NE(st.message().find("ReadLimits::max_total_bytes"), std::string::npos) << st;
  st = ReadGoodWith([](ReadLimits* l) { l->max_elements = 10; });
  EXPECT_NE(st.message().find("/X: has more than ReadLimits::max_elements (10)"),
            std::string::npos) << st;
  st = ReadGoodWith([](ReadLimits* l) { l->max_group_members = 0; });
  EXPECT_NE(st.message().find("links"), std::string::npos) << st;
}

// Variable-length strings are counted as HDF5 allocates them (one read, no
// separate sizing pass): a budget that holds obs's std::string slots but not
// their characters is refused at /obs/_index, before anything else is read.
TEST(HostileLimits, StringCharactersCountAgainstTotalBytes) {
  ASSERT_FALSE(HostileDir().empty());
  absl::StatusOr<AnnData> good = ReadH5ad(HostileDir() + "/good_small.h5ad");
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_GT(good->n_obs(), 0);
  ReadOptions options;
  options.limits.max_total_bytes =
      static_cast<int64_t>(good->n_obs() * sizeof(std::string)) + 1;
  absl::Status st = ReadH5ad(HostileDir() + "/good_small.h5ad", options).status();
  EXPECT_NE(st.message().find("/obs/_index: strings larger than ReadLimits::max_total_bytes"),
            std::string::npos) << st;
}

}  // namespace
}  // namespace candies
