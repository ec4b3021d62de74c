// One vocabulary for a job's settings: what it computes (kind), the preset,
// which modality is low quality, the clustering method and the modality kinds.
// `candies run` (local and --server), candiesd's SubmitJob, candies-worker and
// the pipeline all parse and validate with these functions, so the same input
// is accepted or refused with the same text wherever the job runs. No LibTorch:
// the CLI's remote commands and the daemon use it without the science.
// (The proto enums of candies.proto map 1:1 onto these: server/job_vocabulary.h.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace candies {

enum class Preset { kFast, kPaper };
// "fast" | "paper", any case.
absl::StatusOr<Preset> ParsePreset(absl::string_view text);
const char* PresetName(Preset preset);

// What a job computes. kFull = denoise + integrate + cluster; kIntegrate skips
// the denoiser (the paper's ablation); kDenoise stops after the denoiser;
// kCluster clusters an existing embedding (obsm["X_candies"] of mod1).
enum class JobKind { kFull, kIntegrate, kDenoise, kCluster };
// "full" | "integrate" | "denoise" | "cluster", any case.
absl::StatusOr<JobKind> ParseJobKind(absl::string_view text);
const char* JobKindName(JobKind kind);

enum class LowQuality { kAuto, kMod1, kMod2 };
// "auto" | "mod1" | "mod2", any case.
absl::StatusOr<LowQuality> ParseLowQuality(absl::string_view text);
const char* LowQualityName(LowQuality low_quality);

enum class ClusterMethod { kMclust, kLeiden, kKmeans };
// "mclust" | "gmm", "leiden", "kmeans" | "k-means", any case.
absl::StatusOr<ClusterMethod> ParseClusterMethod(absl::string_view text);
const char* ClusterMethodName(ClusterMethod method);

enum class ModalityKind { kRna, kProtein, kAtac };
// "rna" | "gex" | "gene expression", "protein" | "prot" | "adt", "atac" | "peaks", any case.
absl::StatusOr<ModalityKind> ParseModalityKind(absl::string_view text);
const char* ModalityKindName(ModalityKind kind);  // "rna", "protein", "atac"

// The settings of one job that the CLI, the service and the worker share.
struct JobSettings {
  JobKind kind = JobKind::kFull;
  Preset preset = Preset::kFast;
  LowQuality low_quality = LowQuality::kAuto;
  std::optional<ClusterMethod> cluster_method;  // none: the preset's
  ModalityKind mod1_kind = ModalityKind::kRna;
  ModalityKind mod2_kind = ModalityKind::kProtein;
  int64_t n_clusters = 0;
  bool apply_model = false;  // a trained model is applied (not trained)
  bool save_model = false;   // the trained model is kept
};

// The same settings as text (CLI flags); an empty field takes the default.
struct JobSettingsText {
  std::string kind, preset, low_quality, cluster_method, mod1_kind, mod2_kind;
  int64_t n_clusters = 0;
  bool apply_model = false, save_model = false;
};

// Parses every field (errors name the field: "cluster_method: ..."), then
// ValidateJobSettings.
absl::StatusOr<JobSettings> ParseJobSettings(const JobSettingsText& text);

// The checks across fields, with the service's field names: n_clusters > 0; a
// model is applied or saved only by kind full or denoise, not both at once.
absl::Status ValidateJobSettings(const JobSettings& settings);

}  // namespace candies
