// 10x feature-barcode HDF5: CSC features x barcodes becomes CSR spots x features,
// split by feature_type, with tissue positions as obsm["spatial"] = (pxl_col, pxl_row).
#include <string>

#include "core/io/h5ad.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

std::string Fixtures() {
  // The read test's fixture script writes these; run it here too (idempotent).
  static const bool ran = [] {
    std::string d = std::string(CANDIES_BINARY_DIR) + "/tests/io/fixtures";
    std::string cmd = "mkdir -p '" + d + "' && '" + CANDIES_PYTHON + "' '" + CANDIES_SOURCE_DIR +
                      "/tests/io/make_fixtures.py' '" + d + "'";
    return std::system(cmd.c_str()) == 0;
  }();
  return ran ? std::string(CANDIES_BINARY_DIR) + "/tests/io/fixtures" : "";
}

TEST(Read10xH5, SplitsByFeatureTypeWithoutPositions) {
  ASSERT_FALSE(Fixtures().empty());
  absl::StatusOr<MuData> md = Read10xH5(Fixtures() + "/tenx.h5");
  ASSERT_TRUE(md.ok()) << md.status();
  ASSERT_EQ(md->mod.size(), 2u);
  const AnnData* rna = md->Find("rna");
  const AnnData* prot = md->Find("prot");
  ASSERT_NE(rna, nullptr);
  ASSERT_NE(prot, nullptr);
  EXPECT_EQ(rna->X.format, Matrix::Format::kCsr);
  EXPECT_EQ(rna->X.dtype, DType::kInt32);
  EXPECT_EQ(ToDense(rna->X).values,
            (std::vector<float>{1, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 5}));
  EXPECT_EQ(ToDense(prot->X).values, (std::vector<float>{7, 0, 0, 8, 9, 1, 0, 0}));
  EXPECT_EQ(rna->var.index, (std::vector<std::string>{"GeneA", "GeneB", "GeneC"}));
  EXPECT_EQ(prot->var.Find("gene_ids")->strings, (std::vector<std::string>{"CD3", "CD4"}));
  EXPECT_EQ(rna->obs.index[3], "TTT-1");
}

TEST(Read10xH5, TissuePositionsKeepInTissueSpots) {
  ASSERT_FALSE(Fixtures().empty());
  absl::StatusOr<MuData> md =
      Read10xH5(Fixtures() + "/tenx.h5", Fixtures() + "/tissue_positions_list.csv");
  ASSERT_TRUE(md.ok()) << md.status();
  const AnnData* rna = md->Find("rna");
  ASSERT_NE(rna, nullptr);
  EXPECT_EQ(rna->obs.index, (std::vector<std::string>{"AAA-1", "GGG-1"}));
  EXPECT_EQ(ToDense(rna->X).values, (std::vector<float>{1, 0, 2, 4, 0, 0}));
  EXPECT_EQ(rna->obsm.at("spatial").values, (std::vector<float>{200, 100, 220, 120}));
  EXPECT_EQ(md->obsm.at("spatial").values, rna->obsm.at("spatial").values);
}

TEST(Read10xH5, H5adIsNotTenx) {
  ASSERT_FALSE(Fixtures().empty());
  absl::StatusOr<MuData> md = Read10xH5(Fixtures() + "/dense.h5ad");
  ASSERT_FALSE(md.ok());
  EXPECT_NE(std::string(md.status().message()).find("/matrix"), std::string::npos);
}

}  // namespace
}  // namespace candies
