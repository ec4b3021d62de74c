// One vocabulary for job settings (core/util/job_options.h,
// server/job_vocabulary.h): the inputs `candies run` accepts locally are the
// ones candiesd accepts, and what one refuses the other refuses with the same
// text. The local path is ParseJobSettings (what cmd_run calls); the server
// path is the real service over gRPC, reached with the enums the CLI's remote
// commands send (SetRequestSettings) or, for text it cannot encode as an enum,
// with the text an older client sends.
#include <gtest/gtest.h>

#include "server/job_vocabulary.h"
#include "service_fixture.h"

namespace candies::server {
namespace {

TEST(JobVocabulary, EveryValueRoundTrips) {
  for (JobKind k : {JobKind::kFull, JobKind::kIntegrate, JobKind::kDenoise, JobKind::kCluster}) {
    EXPECT_EQ(*FromProto(ToProto(k)), k);
    EXPECT_EQ(*ParseJobKind(JobKindName(k)), k);
  }
  for (Preset p : {Preset::kFast, Preset::kPaper}) EXPECT_EQ(*FromProto(ToProto(p)), p);
  for (LowQuality l : {LowQuality::kAuto, LowQuality::kMod1, LowQuality::kMod2}) {
    EXPECT_EQ(*FromProto(ToProto(l)), l);
    EXPECT_EQ(*ParseLowQuality(LowQualityName(l)), l);
  }
  for (ClusterMethod m : {ClusterMethod::kMclust, ClusterMethod::kLeiden, ClusterMethod::kKmeans}) {
    EXPECT_EQ(*FromProto(ToProto(std::optional<ClusterMethod>(m))), m);
  }
  EXPECT_FALSE(FromProto(v1::CLUSTER_METHOD_UNSPECIFIED)->has_value());  // the preset's
  for (ModalityKind m : {ModalityKind::kRna, ModalityKind::kProtein, ModalityKind::kAtac}) {
    EXPECT_EQ(*FromProto(ToProto(m), ModalityKind::kRna), m);
  }
  EXPECT_EQ(FromProto(static_cast<v1::Preset>(7)).status().message(), "preset: unknown value 7");
}

class JobVocabularyTest : public service_testing::ServiceTest {
 protected:
  // The server's answer to `text` sent as the CLI's remote commands send it.
  // Text that does not parse cannot become an enum: it is sent as an older
  // client's text, so the server's own vocabulary is what answers.
  absl::Status Server(const JobSettingsText& text, const std::string& dataset) {
    v1::SubmitJobRequest req;
    req.set_mod1_dataset(dataset);
    req.set_mod2_dataset(dataset);
    if (text.apply_model) req.set_model_id("model-none");
    req.set_save_model(text.save_model);
    absl::StatusOr<JobSettings> parsed = ParseJobSettings(text);
    if (parsed.ok()) {
      SetRequestSettings(*parsed, &req);
    } else {  // text the CLI refused: sent as an older client would (deprecated fields)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      req.set_kind_text(text.kind);
      req.set_preset_text(text.preset);
      req.set_low_quality_text(text.low_quality);
      req.set_cluster_method_text(text.cluster_method);
#pragma GCC diagnostic pop
      req.set_n_clusters(static_cast<int32_t>(text.n_clusters));
    }
    v1::Job job;
    grpc::Status s = stub_->SubmitJob(Ctx().get(), req, &job);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    // Accepted: the stored job holds the same settings the local run uses.
    absl::StatusOr<JobSettings> stored = JobSettingsFromRequest(job.spec());
    if (!stored.ok()) return stored.status();
    EXPECT_EQ(stored->kind, parsed->kind);
    EXPECT_EQ(stored->preset, parsed->preset);
    EXPECT_EQ(stored->low_quality, parsed->low_quality);
    EXPECT_EQ(stored->cluster_method, parsed->cluster_method);
    EXPECT_EQ(job.spec().kind(), ToProto(parsed->kind));
    return absl::OkStatus();
  }
};

TEST_F(JobVocabularyTest, LocalAndServerAcceptAndRefuseAlike) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  auto t = [](std::string kind, std::string preset, std::string low, std::string method,
              int64_t k = 3, bool apply = false, bool save = false) {
    JobSettingsText x;
    x.kind = kind;
    x.preset = preset;
    x.low_quality = low;
    x.cluster_method = method;
    x.n_clusters = k;
    x.apply_model = apply;
    x.save_model = save;
    return x;
  };
  const std::vector<JobSettingsText> accepted = {
      t("", "", "", ""),          t("full", "fast", "auto", "gmm"),
      t("Integrate", "PAPER", "Mod2", "k-means"), t("CLUSTER", "fast", "mod1", "Leiden"),
      t("denoise", "paper", "auto", "MCLUST", 5, false, true)};
  for (const JobSettingsText& x : accepted) {
    SCOPED_TRACE(x.kind + "/" + x.preset + "/" + x.low_quality + "/" + x.cluster_method);
    ASSERT_TRUE(ParseJobSettings(x).ok()) << ParseJobSettings(x).status();
    EXPECT_TRUE(Server(x, d.id()).ok()) << Server(x, d.id());
  }
  const std::vector<JobSettingsText> refused = {
      t("magic", "", "", ""),     t("", "slow", "", ""),        t("", "", "rna", ""),
      t("", "", "", "louvain"),   t("full", "fast", "auto", "", 0),
      t("cluster", "", "", "", 3, /*apply=*/true),                // a model for kind cluster
      t("integrate", "", "", "", 3, false, /*save=*/true),        // saving without training
      t("full", "", "", "", 3, /*apply=*/true, /*save=*/true)};   // apply and save at once
  for (const JobSettingsText& x : refused) {
    SCOPED_TRACE(x.kind + "/" + x.preset + "/" + x.low_quality + "/" + x.cluster_method);
    absl::StatusOr<JobSettings> local = ParseJobSettings(x);
    ASSERT_FALSE(local.ok());
    absl::Status server = Server(x, d.id());
    EXPECT_EQ(server.code(), absl::StatusCode::kInvalidArgument) << server;
    EXPECT_EQ(server.message(), local.status().message());
  }
}

}  // namespace
}  // namespace candies::server
