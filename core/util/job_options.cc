#include "core/util/job_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace candies {
namespace {

absl::Status Refuse(absl::string_view field, absl::string_view text, absl::string_view choices) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", text, "' is not one of ", choices, " (any case)"));
}

}  // namespace

absl::StatusOr<Preset> ParsePreset(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "fast") return Preset::kFast;
  if (t == "paper") return Preset::kPaper;
  return Refuse("preset", text, "fast, paper");
}
const char* PresetName(Preset preset) { return preset == Preset::kFast ? "fast" : "paper"; }

absl::StatusOr<JobKind> ParseJobKind(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "full") return JobKind::kFull;
  if (t == "integrate") return JobKind::kIntegrate;
  if (t == "denoise") return JobKind::kDenoise;
  if (t == "cluster") return JobKind::kCluster;
  return Refuse("kind", text, "full, integrate, denoise, cluster");
}
const char* JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kFull: return "full";
    case JobKind::kIntegrate: return "integrate";
    case JobKind::kDenoise: return "denoise";
    case JobKind::kCluster: return "cluster";
  }
  return "full";
}

absl::StatusOr<LowQuality> ParseLowQuality(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "auto") return LowQuality::kAuto;
  if (t == "mod1") return LowQuality::kMod1;
  if (t == "mod2") return LowQuality::kMod2;
  return Refuse("low_quality", text, "auto, mod1, mod2");
}
const char* LowQualityName(LowQuality low_quality) {
  switch (low_quality) {
    case LowQuality::kAuto: return "auto";
    case LowQuality::kMod1: return "mod1";
    case LowQuality::kMod2: return "mod2";
  }
  return "auto";
}

absl::StatusOr<ClusterMethod> ParseClusterMethod(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "mclust" || t == "gmm") return ClusterMethod::kMclust;
  if (t == "leiden") return ClusterMethod::kLeiden;
  if (t == "kmeans" || t == "k-means") return ClusterMethod::kKmeans;
  return Refuse("cluster_method", text, "mclust (gmm), leiden, kmeans (k-means)");
}
const char* ClusterMethodName(ClusterMethod method) {
  switch (method) {
    case ClusterMethod::kMclust: return "mclust";
    case ClusterMethod::kLeiden: return "leiden";
    case ClusterMethod::kKmeans: return "kmeans";
  }
  return "unknown";
}

absl::StatusOr<ModalityKind> ParseModalityKind(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "rna" || t == "gex" || t == "gene expression") return ModalityKind::kRna;
  if (t == "protein" || t == "prot" || t == "adt") return ModalityKind::kProtein;
  if (t == "atac" || t == "peaks") return ModalityKind::kAtac;
  return Refuse("modality kind", text, "rna, protein, atac");
}
const char* ModalityKindName(ModalityKind kind) {
  switch (kind) {
    case ModalityKind::kRna: return "rna";
    case ModalityKind::kProtein: return "protein";
    case ModalityKind::kAtac: return "atac";
  }
  return "unknown";
}

absl::StatusOr<JobSettings> ParseJobSettings(const JobSettingsText& t) {
  JobSettings s;
  if (!t.kind.empty()) {
    absl::StatusOr<JobKind> v = ParseJobKind(t.kind);
    if (!v.ok()) return v.status();
    s.kind = *v;
  }
  if (!t.preset.empty()) {
    absl::StatusOr<Preset> v = ParsePreset(t.preset);
    if (!v.ok()) return v.status();
    s.preset = *v;
  }
  if (!t.low_quality.empty()) {
    absl::StatusOr<LowQuality> v = ParseLowQuality(t.low_quality);
    if (!v.ok()) return v.status();
    s.low_quality = *v;
  }
  if (!t.cluster_method.empty()) {
    absl::StatusOr<ClusterMethod> v = ParseClusterMethod(t.cluster_method);
    if (!v.ok()) return v.status();
    s.cluster_method = *v;
  }
  for (auto [text, out, field] : {std::make_tuple(&t.mod1_kind, &s.mod1_kind, "mod1_kind"),
                                  std::make_tuple(&t.mod2_kind, &s.mod2_kind, "mod2_kind")}) {
    if (text->empty()) continue;
    absl::StatusOr<ModalityKind> v = ParseModalityKind(*text);
    if (!v.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", v.status().message()));
    }
    *out = *v;
  }
  s.n_clusters = t.n_clusters;
  s.apply_model = t.apply_model;
  s.save_model = t.save_model;
  absl::Status valid = ValidateJobSettings(s);
  if (!valid.ok()) return valid;
  return s;
}

absl::Status ValidateJobSettings(const JobSettings& s) {
  if (s.n_clusters <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_clusters: must be > 0, got ", s.n_clusters));
  }
  const bool trains = s.kind == JobKind::kFull || s.kind == JobKind::kDenoise;
  if (s.apply_model && !trains) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_id: applies to kind full or denoise, not ", JobKindName(s.kind)));
  }
  if (s.save_model && !trains) {
    return absl::InvalidArgumentError(
        absl::StrCat("save_model: applies to kind full or denoise, not ", JobKindName(s.kind)));
  }
  if (s.apply_model && s.save_model) {
    return absl::InvalidArgumentError(
        "save_model: cannot be combined with model_id (an applied model is not retrained)");
  }
  return absl::OkStatus();
}

}  // namespace candies
