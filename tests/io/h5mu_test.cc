// MuData round trip: /mod/<name> groups in mod-order plus global obs / obsm / uns.
#include <string>

#include "core/io/h5ad.h"
#include "gtest/gtest.h"

namespace candies {
namespace {

AnnData Modality(int64_t n_vars, const std::string& prefix) {
  AnnData a;
  std::vector<float> v;
  for (int64_t i = 0; i < 2 * n_vars; ++i) v.push_back(static_cast<float>(i));
  a.X = Matrix::Dense(2, n_vars, v);
  a.obs.index = {"s0", "s1"};
  for (int64_t j = 0; j < n_vars; ++j) a.var.index.push_back(prefix + std::to_string(j));
  return a;
}

TEST(H5mu, RoundTripKeepsModOrderAndGlobals) {
  MuData md;
  md.mod.emplace_back("rna", Modality(3, "gene"));
  md.mod.emplace_back("prot", Modality(2, "adt"));
  md.mod.emplace_back("atac", Modality(1, "peak"));
  md.obs.index = {"s0", "s1"};
  md.obs.Set(Column::Categorical("domain", {"x", "y"}));
  md.obsm["spatial"] = Matrix::Dense(2, 2, {1, 2, 3, 4});
  md.uns.Set("version", UnsValue::String("1"));
  std::string path = std::string(CANDIES_BINARY_DIR) + "/tests/io/roundtrip.h5mu";
  absl::Status st = WriteH5mu(md, path);
  ASSERT_TRUE(st.ok()) << st;
  absl::StatusOr<MuData> back = ReadH5mu(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->mod.size(), 3u);
  EXPECT_EQ(back->mod[0].first, "rna");
  EXPECT_EQ(back->mod[1].first, "prot");
  EXPECT_EQ(back->mod[2].first, "atac");
  EXPECT_EQ(back->Find("prot")->var.index, (std::vector<std::string>{"adt0", "adt1"}));
  EXPECT_EQ(back->Find("rna")->X.values, md.mod[0].second.X.values);
  EXPECT_EQ(back->obs.Find("domain")->ValueAsString(1), "y");
  EXPECT_EQ(back->obsm.at("spatial").values, md.obsm.at("spatial").values);
  EXPECT_EQ(back->uns.Find("version")->str, "1");
  // An .h5ad is not a MuData file.
  AnnData single = Modality(2, "g");
  std::string h5ad = std::string(CANDIES_BINARY_DIR) + "/tests/io/single.h5ad";
  ASSERT_TRUE(WriteH5ad(single, h5ad).ok());
  absl::StatusOr<MuData> not_mu = ReadH5mu(h5ad);
  ASSERT_FALSE(not_mu.ok());
  EXPECT_NE(std::string(not_mu.status().message()).find("/mod"), std::string::npos);
}

}  // namespace
}  // namespace candies
