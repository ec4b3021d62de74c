// The job vocabulary's words (core/util/job_options.h): every value's name
// parses back to it, aliases and any case are accepted, and a refusal names
// the field, the text and the choices in fixed words (the CLI, the daemon and
// the worker all show these, and the Python client repeats their form).
#include "core/util/job_options.h"

#include "gtest/gtest.h"

namespace candies {
namespace {

TEST(JobOptions, NamesParseBack) {
  for (Preset v : {Preset::kFast, Preset::kPaper}) EXPECT_EQ(*ParsePreset(PresetName(v)), v);
  for (JobKind v : {JobKind::kFull, JobKind::kIntegrate, JobKind::kDenoise, JobKind::kCluster}) {
    EXPECT_EQ(*ParseJobKind(JobKindName(v)), v);
  }
  for (LowQuality v : {LowQuality::kAuto, LowQuality::kMod1, LowQuality::kMod2}) {
    EXPECT_EQ(*ParseLowQuality(LowQualityName(v)), v);
  }
  for (ClusterMethod v : {ClusterMethod::kMclust, ClusterMethod::kLeiden, ClusterMethod::kKmeans}) {
    EXPECT_EQ(*ParseClusterMethod(ClusterMethodName(v)), v);
  }
  for (ModalityKind v : {ModalityKind::kRna, ModalityKind::kProtein, ModalityKind::kAtac}) {
    EXPECT_EQ(*ParseModalityKind(ModalityKindName(v)), v);
  }
}

TEST(JobOptions, Names) {
  EXPECT_STREQ(PresetName(Preset::kPaper), "paper");
  EXPECT_STREQ(JobKindName(JobKind::kIntegrate), "integrate");
  EXPECT_STREQ(LowQualityName(LowQuality::kMod2), "mod2");
  EXPECT_STREQ(ClusterMethodName(ClusterMethod::kMclust), "mclust");
  EXPECT_STREQ(ClusterMethodName(ClusterMethod::kKmeans), "kmeans");
  EXPECT_STREQ(ModalityKindName(ModalityKind::kProtein), "protein");
}

TEST(JobOptions, AliasesInAnyCase) {
  EXPECT_EQ(*ParsePreset("FAST"), Preset::kFast);
  EXPECT_EQ(*ParseJobKind("Denoise"), JobKind::kDenoise);
  EXPECT_EQ(*ParseLowQuality("MOD1"), LowQuality::kMod1);
  EXPECT_EQ(*ParseClusterMethod("GMM"), ClusterMethod::kMclust);
  EXPECT_EQ(*ParseClusterMethod("K-Means"), ClusterMethod::kKmeans);
  EXPECT_EQ(*ParseClusterMethod("LEIDEN"), ClusterMethod::kLeiden);
  EXPECT_EQ(*ParseModalityKind("GEX"), ModalityKind::kRna);
  EXPECT_EQ(*ParseModalityKind("Gene Expression"), ModalityKind::kRna);
  EXPECT_EQ(*ParseModalityKind("prot"), ModalityKind::kProtein);
  EXPECT_EQ(*ParseModalityKind("ADT"), ModalityKind::kProtein);
  EXPECT_EQ(*ParseModalityKind("Peaks"), ModalityKind::kAtac);
  // Only whole words: no trimming, no prefixes.
  EXPECT_FALSE(ParsePreset(" fast").ok());
  EXPECT_FALSE(ParseClusterMethod("k").ok());
  EXPECT_FALSE(ParseModalityKind("").ok());
}

TEST(JobOptions, RefusalsNameFieldTextAndChoices) {
  auto message = [](const absl::Status& s) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  EXPECT_EQ(message(ParsePreset("Slow").status()),
            "preset: 'Slow' is not one of fast, paper (any case)");
  EXPECT_EQ(message(ParseJobKind("magic").status()),
            "kind: 'magic' is not one of full, integrate, denoise, cluster (any case)");
  EXPECT_EQ(message(ParseLowQuality("rna").status()),
            "low_quality: 'rna' is not one of auto, mod1, mod2 (any case)");
  EXPECT_EQ(message(ParseClusterMethod("louvain").status()),
            "cluster_method: 'louvain' is not one of mclust (gmm), leiden, kmeans (k-means) (any case)");
  EXPECT_EQ(message(ParseModalityKind("dna").status()),
            "modality kind: 'dna' is not one of rna, protein, atac (any case)");
  JobSettingsText t;
  t.n_clusters = 3;
  t.mod2_kind = "DNA";
  EXPECT_EQ(message(ParseJobSettings(t).status()),
            "mod2_kind: modality kind: 'DNA' is not one of rna, protein, atac (any case)");
}

}  // namespace
}  // namespace candies
