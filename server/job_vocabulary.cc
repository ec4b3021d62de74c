#include "server/job_vocabulary.h"

#include "absl/strings/str_cat.h"

// This file is where the deprecated *_text fields of SubmitJobRequest are read
// and cleared on purpose (requests from older clients, rows stored before the enums).
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace candies::server {
namespace {

absl::Status Unknown(const char* field, int value) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown value ", value));
}

}  // namespace

v1::JobKind ToProto(JobKind kind) {
  switch (kind) {
    case JobKind::kFull: return v1::JOB_KIND_FULL;
    case JobKind::kIntegrate: return v1::JOB_KIND_INTEGRATE;
    case JobKind::kDenoise: return v1::JOB_KIND_DENOISE;
    case JobKind::kCluster: return v1::JOB_KIND_CLUSTER;
  }
  return v1::JOB_KIND_UNSPECIFIED;
}

v1::Preset ToProto(Preset preset) {
  return preset == Preset::kPaper ? v1::PRESET_PAPER : v1::PRESET_FAST;
}

v1::LowQuality ToProto(LowQuality low_quality) {
  switch (low_quality) {
    case LowQuality::kAuto: return v1::LOW_QUALITY_AUTO;
    case LowQuality::kMod1: return v1::LOW_QUALITY_MOD1;
    case LowQuality::kMod2: return v1::LOW_QUALITY_MOD2;
  }
  return v1::LOW_QUALITY_UNSPECIFIED;
}

v1::ClusterMethod ToProto(std::optional<ClusterMethod> method) {
  if (!method.has_value()) return v1::CLUSTER_METHOD_UNSPECIFIED;
  switch (*method) {
    case ClusterMethod::kMclust: return v1::CLUSTER_METHOD_MCLUST;
    case ClusterMethod::kLeiden: return v1::CLUSTER_METHOD_LEIDEN;
    case ClusterMethod::kKmeans: return v1::CLUSTER_METHOD_KMEANS;
  }
  return v1::CLUSTER_METHOD_UNSPECIFIED;
}

v1::ModalityKind ToProto(ModalityKind kind) {
  switch (kind) {
    case ModalityKind::kRna: return v1::MODALITY_KIND_RNA;
    case ModalityKind::kProtein: return v1::MODALITY_KIND_PROTEIN;
    case ModalityKind::kAtac: return v1::MODALITY_KIND_ATAC;
  }
  return v1::MODALITY_KIND_UNSPECIFIED;
}

absl::StatusOr<JobKind> FromProto(v1::JobKind kind, const char* field) {
  switch (kind) {
    case v1::JOB_KIND_UNSPECIFIED:
    case v1::JOB_KIND_FULL: return JobKind::kFull;
    case v1::JOB_KIND_INTEGRATE: return JobKind::kIntegrate;
    case v1::JOB_KIND_DENOISE: return JobKind::kDenoise;
    case v1::JOB_KIND_CLUSTER: return JobKind::kCluster;
    default: return Unknown(field, kind);
  }
}

absl::StatusOr<Preset> FromProto(v1::Preset preset, const char* field) {
  switch (preset) {
    case v1::PRESET_UNSPECIFIED:
    case v1::PRESET_FAST: return Preset::kFast;
    case v1::PRESET_PAPER: return Preset::kPaper;
    default: return Unknown(field, preset);
  }
}

absl::StatusOr<LowQuality> FromProto(v1::LowQuality low_quality, const char* field) {
  switch (low_quality) {
    case v1::LOW_QUALITY_UNSPECIFIED:
    case v1::LOW_QUALITY_AUTO: return LowQuality::kAuto;
    case v1::LOW_QUALITY_MOD1: return LowQuality::kMod1;
    case v1::LOW_QUALITY_MOD2: return LowQuality::kMod2;
    default: return Unknown(field, low_quality);
  }
}

absl::StatusOr<std::optional<ClusterMethod>> FromProto(v1::ClusterMethod method,
                                                       const char* field) {
  switch (method) {
    case v1::CLUSTER_METHOD_UNSPECIFIED: return std::optional<ClusterMethod>();
    case v1::CLUSTER_METHOD_MCLUST: return std::optional<ClusterMethod>(ClusterMethod::kMclust);
    case v1::CLUSTER_METHOD_LEIDEN: return std::optional<ClusterMethod>(ClusterMethod::kLeiden);
    case v1::CLUSTER_METHOD_KMEANS: return std::optional<ClusterMethod>(ClusterMethod::kKmeans);
    default: return Unknown(field, method);
  }
}

absl::StatusOr<ModalityKind> FromProto(v1::ModalityKind kind, ModalityKind fallback,
                                       const char* field) {
  switch (kind) {
    case v1::MODALITY_KIND_UNSPECIFIED: return fallback;
    case v1::MODALITY_KIND_RNA: return ModalityKind::kRna;
    case v1::MODALITY_KIND_PROTEIN: return ModalityKind::kProtein;
    case v1::MODALITY_KIND_ATAC: return ModalityKind::kAtac;
    default: return Unknown(field, kind);
  }
}

absl::StatusOr<JobSettings> JobSettingsFromRequest(const v1::SubmitJobRequest& r) {
  // Text from an older client or a stored job goes through the CLI's parser.
  JobSettingsText legacy;
  if (r.kind() == v1::JOB_KIND_UNSPECIFIED) legacy.kind = r.kind_text();
  if (r.preset() == v1::PRESET_UNSPECIFIED) legacy.preset = r.preset_text();
  if (r.low_quality() == v1::LOW_QUALITY_UNSPECIFIED) legacy.low_quality = r.low_quality_text();
  if (r.cluster_method() == v1::CLUSTER_METHOD_UNSPECIFIED) {
    legacy.cluster_method = r.cluster_method_text();
  }
  legacy.n_clusters = r.n_clusters();
  legacy.apply_model = !r.model_id().empty();
  legacy.save_model = r.save_model();
  JobSettings s;
  if (!legacy.kind.empty() || !legacy.preset.empty() || !legacy.low_quality.empty() ||
      !legacy.cluster_method.empty()) {
    JobSettingsText only_text = legacy;
    only_text.n_clusters = 1;  // validated below, once
    only_text.apply_model = only_text.save_model = false;
    absl::StatusOr<JobSettings> parsed = ParseJobSettings(only_text);
    if (!parsed.ok()) return parsed.status();
    s = *parsed;
  }
  if (r.kind() != v1::JOB_KIND_UNSPECIFIED) {
    absl::StatusOr<JobKind> v = FromProto(r.kind());
    if (!v.ok()) return v.status();
    s.kind = *v;
  }
  if (r.preset() != v1::PRESET_UNSPECIFIED) {
    absl::StatusOr<Preset> v = FromProto(r.preset());
    if (!v.ok()) return v.status();
    s.preset = *v;
  }
  if (r.low_quality() != v1::LOW_QUALITY_UNSPECIFIED) {
    absl::StatusOr<LowQuality> v = FromProto(r.low_quality());
    if (!v.ok()) return v.status();
    s.low_quality = *v;
  }
  if (r.cluster_method() != v1::CLUSTER_METHOD_UNSPECIFIED) {
    absl::StatusOr<std::optional<ClusterMethod>> v = FromProto(r.cluster_method());
    if (!v.ok()) return v.status();
    s.cluster_method = *v;
  }
  s.n_clusters = r.n_clusters();
  s.apply_model = !r.model_id().empty();
  s.save_model = r.save_model();
  absl::Status valid = ValidateJobSettings(s);
  if (!valid.ok()) return valid;
  return s;
}

const char* KindName(const v1::SubmitJobRequest& r) {
  if (r.kind() == v1::JOB_KIND_UNSPECIFIED && !r.kind_text().empty()) {
    absl::StatusOr<JobKind> k = ParseJobKind(r.kind_text());
    return JobKindName(k.ok() ? *k : JobKind::kFull);
  }
  absl::StatusOr<JobKind> k = FromProto(r.kind());
  return JobKindName(k.ok() ? *k : JobKind::kFull);
}

void SetRequestSettings(const JobSettings& s, v1::SubmitJobRequest* r) {
  r->set_kind(ToProto(s.kind));
  r->set_preset(ToProto(s.preset));
  r->set_low_quality(ToProto(s.low_quality));
  r->set_cluster_method(ToProto(s.cluster_method));
  r->set_n_clusters(static_cast<int32_t>(s.n_clusters));
  r->clear_kind_text();
  r->clear_preset_text();
  r->clear_low_quality_text();
  r->clear_cluster_method_text();
}

}  // namespace candies::server
