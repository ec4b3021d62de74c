// PipelineOptions: presets, names, validation and the record in uns.
#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/pipeline/pipeline_internal.h"

namespace candies {

absl::StatusOr<HighInput> ParseHighInput(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "auto") return HighInput::kAuto;
  if (t == "features") return HighInput::kFeatures;
  if (t == "embedding") return HighInput::kEmbedding;
  if (t == "smoothed") return HighInput::kSmoothed;
  return absl::InvalidArgumentError(
      absl::StrCat("high_input: '", t, "' is not auto|features|embedding|smoothed"));
}

const char* HighInputName(HighInput input) {
  switch (input) {
    case HighInput::kAuto: return "auto";
    case HighInput::kFeatures: return "features";
    case HighInput::kEmbedding: return "embedding";
    case HighInput::kSmoothed: return "smoothed";
  }
  return "?";
}

PipelineOptions PipelineOptions::FromPreset(Preset preset) {
  PipelineOptions o;
  o.preset = preset;
  if (preset == Preset::kFast) {
    // The smallest settings that keep the simulation accuracy target on a
    // 2-core CPU (bench/quality measures it; docs/SCIENCE.md has the numbers).
    o.preprocess.n_top_genes = 2000;
    o.preprocess.n_comps = 30;
    o.gae.epochs = 60;
    o.integration.epochs = 60;
    // Three integrations from different initialisations, clustered by k-means:
    // on the simulator this halves the errors of one network clustered by
    // mclust, whose mixing proportions pull the tips of small domains into the
    // large background (docs/SCIENCE.md, "Integration ensemble and k-means").
    o.integration.ensemble = 3;
    o.cluster.method = ClusterMethod::kKmeans;
    o.diffusion = FastDiffusionOptions();
  } else {
    // The authors' sizes: GAE 300 epochs, integration 200, DiT 512/6/16, T=800.
    o.preprocess.n_top_genes = 3000;
    o.preprocess.n_comps = 50;
    o.gae.epochs = 300;
    o.integration.epochs = 200;
    o.diffusion = PaperDiffusionOptions();
  }
  return o;
}

absl::Status ValidatePipelineOptions(const PipelineOptions& options, int64_t n) {
  if (options.n_clusters < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("n_clusters: must be >= 1 (got ", options.n_clusters, ")"));
  if (options.n_clusters > n)
    return absl::InvalidArgumentError(
        absl::StrCat("n_clusters: ", options.n_clusters, " is more than the ", n, " spots"));
  const int64_t need = std::max(options.gae.spatial_k,
                                std::max(options.integration.spatial_k, options.integration.feature_k));
  if (options.gae.spatial_k < 1 || options.integration.spatial_k < 1 || options.integration.feature_k < 1)
    return absl::InvalidArgumentError("spatial_k / feature_k: must be >= 1");
  if (options.joint_smoothing_hops < 0 || options.joint_smoothing_hops > kMaxJointSmoothingHops)
    return absl::InvalidArgumentError(absl::StrCat("joint_smoothing_hops: must be in [0, ",
                                                   kMaxJointSmoothingHops, "] (got ",
                                                   options.joint_smoothing_hops, ")"));
  if (options.joint_smoothing_max_auto_hops < 0 || options.joint_smoothing_max_auto_hops > kMaxJointSmoothingHops)
    return absl::InvalidArgumentError(absl::StrCat("joint_smoothing_max_auto_hops: must be in [0, ",
                                                   kMaxJointSmoothingHops, "] (got ",
                                                   options.joint_smoothing_max_auto_hops, ")"));
  if (!(options.joint_smoothing_min_agreement >= 0 && options.joint_smoothing_min_agreement <= 1))
    return absl::InvalidArgumentError(absl::StrCat("joint_smoothing_min_agreement: must be in [0, 1] (got ",
                                                   options.joint_smoothing_min_agreement, ")"));
  if (!std::isfinite(options.denoised_min_morans_gain) || std::abs(options.denoised_min_morans_gain) > 2)
    return absl::InvalidArgumentError(absl::StrCat("denoised_min_morans_gain: must be in [-2, 2] (got ",
                                                   options.denoised_min_morans_gain, ")"));
  if (n <= need)
    return absl::InvalidArgumentError(absl::StrCat("n_obs: ", n, " spots is too few for k = ", need,
                                                   " neighbours (need more than k)"));
  return absl::OkStatus();
}

UnsValue PipelineParams(const PipelineOptions& o) {
  UnsValue p = UnsValue::Map();
  p.Set("preset", UnsValue::String(PresetName(o.preset)));
  p.Set("kind", UnsValue::String(JobKindName(o.kind)));
  p.Set("n_clusters", UnsValue::Int(o.n_clusters));
  p.Set("cluster_method", UnsValue::String(ClusterMethodName(o.cluster.method)));
  p.Set("n_top_genes", UnsValue::Int(o.preprocess.n_top_genes));
  p.Set("n_comps", UnsValue::Int(o.preprocess.n_comps));
  p.Set("gae_epochs", UnsValue::Int(o.gae.epochs));
  p.Set("gae_hidden", UnsValue::Int(o.gae.hidden));
  p.Set("gae_latent", UnsValue::Int(o.gae.latent));
  p.Set("gae_rna_latent", UnsValue::Int(o.gae.rna_latent));
  p.Set("gae_lr", UnsValue::Float(o.gae.lr));
  p.Set("integration_epochs", UnsValue::Int(o.integration.epochs));
  p.Set("integration_out_dim", UnsValue::Int(o.integration.out_dim));
  p.Set("integration_ensemble", UnsValue::Int(o.integration.ensemble));
  p.Set("temperature", UnsValue::Float(o.integration.temperature));
  p.Set("spatial_k", UnsValue::Int(o.integration.spatial_k));
  p.Set("feature_k", UnsValue::Int(o.integration.feature_k));
  p.Set("contrastive_batch", UnsValue::Int(o.integration.contrastive_batch));
  p.Set("integration_high_input", UnsValue::String(HighInputName(o.high_input)));
  p.Set("joint_smoothing_hops", UnsValue::Int(o.joint_smoothing_hops));
  p.Set("joint_smoothing_auto", UnsValue::Bool(o.joint_smoothing_auto));
  p.Set("joint_smoothing_min_morans_i", UnsValue::Float(o.joint_smoothing_min_morans_i));
  p.Set("joint_smoothing_min_agreement", UnsValue::Float(o.joint_smoothing_min_agreement));
  p.Set("denoised_input_guard", UnsValue::Bool(o.denoised_input_guard));
  p.Set("denoised_min_morans_gain", UnsValue::Float(o.denoised_min_morans_gain));
  p.Set("labels_key", UnsValue::String(o.labels_key));
  return p;
}

}  // namespace candies
