// The CANDIES pipeline, end to end: align two modalities, preprocess, build
// graphs, train the graph auto-encoders, pick the low-quality modality, denoise
// it (conditional diffusion), integrate (contrastive graph network), cluster.
//
// This is the one entry point that `candies run` (local) and candiesd (remote)
// both call, so a job gives the same result wherever it runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/cluster/cluster.h"
#include "core/io/anndata.h"
#include "core/models/diffusion.h"
#include "core/pipeline/trained_model.h"
#include "core/models/gae.h"
#include "core/models/integration.h"
#include "core/preprocess/preprocess.h"
#include "core/util/job_options.h"
#include "core/util/progress.h"

namespace candies {

// Preset, JobKind, LowQuality (and ClusterMethod, ModalityKind) with their
// parsers: core/util/job_options.h, shared with the CLI, the daemon and the worker.

// What the integration takes for the high-quality modality (the one that was
// not denoised): its preprocessed features (PCA / LSI), its GAE embedding, the
// features averaged once over the layout's neighbourhood, or kAuto: the rule
// of docs/SCIENCE.md ("Integration input"), decided per section from the
// features' spatial coherence (MultivariateMoransI, core/graph/graph.h).
enum class HighInput { kAuto, kFeatures, kEmbedding, kSmoothed };
absl::StatusOr<HighInput> ParseHighInput(absl::string_view text);  // "auto" | "features" | "embedding" | "smoothed"
const char* HighInputName(HighInput input);

// GaeOptions (core/models/gae.h) and IntegrationOptions (core/models/integration.h)
// are the per-stage settings.

// The integration reseeds the global generator with seed ^ this salt, so its
// result does not depend on how much randomness earlier stages drew.
inline constexpr uint64_t kIntegrationSeedSalt = 0x9e3779b97f4a7c15ull;

// PipelineOptions::joint_smoothing_hops above this blurs domains into each
// other (each hop widens the kernel by one ring of spots).
inline constexpr int64_t kMaxJointSmoothingHops = 8;

struct PipelineOptions {
  Preset preset = Preset::kFast;
  JobKind kind = JobKind::kFull;
  int64_t n_clusters = 0;  // required (> 0)
  LowQuality low_quality = LowQuality::kAuto;
  std::string labels_key;   // obs column of mod1 (or mod2) with true domains; optional
  std::string device = "auto";
  uint64_t seed = 0;
  int threads = 0;  // CPU thread budget (0: the cores available); core/runtime/threads.h
  PreprocessOptions preprocess;
  GaeOptions gae;
  DiffusionOptions diffusion;
  IntegrationOptions integration;
  ClusterOptions cluster;
  // Clustering used to compare the two GAE embeddings (ALGORITHM.md 2.2); falls
  // back to cluster.method when it misses n_clusters.
  ClusterMethod selection_method = ClusterMethod::kLeiden;
  std::string save_model_dir;  // non-empty: save the trained model there (kFull, kDenoise)
  std::string load_model_dir;  // non-empty: load a model and apply it instead of training
  // A model already in memory (the daemon's registry): applied instead of
  // training the denoiser; wins over load_model_dir.
  std::shared_ptr<const TrainedModel> pretrained;
  // kFull / kDenoise: return the trained model in PipelineResult::trained_model.
  bool keep_trained_model = false;
  bool keep_raw_in_denoised = true;  // layers["raw"] in the denoised AnnData
  // The integration's input for the high-quality modality (HighInput above).
  // Features keep domain corners sharp (the GAE embedding has been through two
  // spatial graph convolutions and the integration adds a third: docs/SCIENCE.md,
  // "graph ceiling"), but carry the modality's per-spot noise into the joint
  // embedding when the modality is itself noisy. The low-quality modality
  // always enters as its (denoised) embedding.
  HighInput high_input = HighInput::kFeatures;
  // kAuto: features when their multivariate Moran's I on the layout graph is
  // at least this, else the `high_input_fallback`.
  double high_input_min_morans_i = 0.5;
  HighInput high_input_fallback = HighInput::kEmbedding;
  // Spatial smoothing of the joint embedding before clustering: X_candies =
  // A^h Z, with A the normalised adjacency (self-loops included) of the
  // layout's own neighbourhood (DeriveLayoutNeighbours, core/graph/layout.h:
  // 4 on a square grid, 6 on a hexagonal lattice, 6 nearest on irregular
  // positions). 0: off. Why: docs/SCIENCE.md, "Tissue families".
  int64_t joint_smoothing_hops = 0;
  // When joint_smoothing_hops is 0: smooth adaptively. While the joint
  // embedding's multivariate Moran's I on the layout graph (the share of its
  // variance that neighbouring spots share) is below `joint_smoothing_min_morans_i`,
  // apply one more hop, at most `joint_smoothing_max_auto_hops`. A clean joint
  // embedding (Moran's I >= 0.8) is left alone, so domain corners stay sharp;
  // one dominated by per-spot noise is averaged. Chosen on the tuning families
  // only (docs/SCIENCE.md, "Adaptive joint smoothing").
  bool joint_smoothing_auto = true;
  double joint_smoothing_min_morans_i = 0.8;
  // 4 since session 23 (was 2): on grid_protein_noisy seed 1 the agreement
  // rule still wanted hops at 2 and settles at 4 (docs/SCIENCE.md).
  int64_t joint_smoothing_max_auto_hops = 4;
  // The adaptive rule also hops while the domains still move: when the job's
  // clustering of the embedding after one more hop agrees with the current one
  // below this ARI. Catches embeddings that are spatially smooth (Moran's I
  // >= 0.8) yet too noisy to cluster, as when both modalities are weak. 0: off.
  double joint_smoothing_min_agreement = 0.85;
  // kFull: the integration takes the denoised low-quality embedding only when
  // its multivariate Moran's I on the layout graph is at least the GAE
  // embedding's (the denoiser's input) plus `denoised_min_morans_gain`;
  // otherwise it takes the GAE embedding, as the --no-denoise ablation does.
  // The denoised embedding and matrix are returned either way. Why: on the
  // benchmark families the denoised embedding was often less coherent than
  // its input, and the full method then fell below its ablation
  // (docs/SCIENCE.md, "Denoiser guard"). false: always the denoised embedding.
  bool denoised_input_guard = true;
  double denoised_min_morans_gain = 0.0;
  // Marker features per domain (Wilcoxon rank-sum, scanpy's rank_genes_groups)
  // of the RNA modality (else mod1), in uns["rank_genes_groups"].
  bool rank_markers = true;

  // The preset's defaults (every field above), for `n_clusters` domains.
  static PipelineOptions FromPreset(Preset preset);
};

struct ModalityInput {
  std::string name;  // "mod1"/"mod2" role is positional; name is for messages ("rna", "prot")
  ModalityKind kind = ModalityKind::kRna;
  std::shared_ptr<const AnnData> adata;
};

struct PipelineResult {
  std::vector<std::string> obs_names;  // mod1's spot names, in mod1's order
  std::vector<float> spatial;          // N x 2 row-major
  torch::Tensor joint;                 // N x out_dim (CPU float32): obsm["X_candies"]
  torch::Tensor emb_mod1, emb_mod2;    // per-modality embeddings
  torch::Tensor denoised;              // low-quality embedding after denoising (undefined if skipped)
  std::shared_ptr<AnnData> denoised_expression;  // low-quality modality, denoised (optional)
  std::vector<int32_t> clusters;       // N, 0-based
  std::string low_quality;             // "mod1" or "mod2"
  std::vector<std::pair<std::string, double>> stage_seconds;
  std::vector<std::pair<std::string, double>> metrics;  // when labels_key was given
  UnsValue uns;  // uns["candies"]: parameters, seed, version, device, stages, metrics
  std::shared_ptr<const TrainedModel> trained_model;  // when keep_trained_model and trained
  UnsValue markers;  // uns["rank_genes_groups"] (empty map when not computed)
  std::vector<std::string> warnings;  // also in uns["candies"]["warnings"]
  // The selection's clusters of each modality's embedding (when it ran):
  // obs["candies_cluster_mod1"], ["candies_cluster_mod2"].
  std::vector<std::vector<int32_t>> modality_clusters;
  std::vector<std::string> truth_labels;  // labels_key's values: obs["candies_truth"]
};

// Runs `options.kind` on two modalities measured on the same spots. Spots are
// matched by obs name, or by coordinates when no names are shared; unmatched
// spots are an InvalidArgument error that lists how many (and a few names).
// Stops with Cancelled when `cancel` fires (checked at least once per epoch).
absl::StatusOr<PipelineResult> RunPipeline(const ModalityInput& mod1, const ModalityInput& mod2,
                                           const PipelineOptions& options,
                                           const ProgressSink& progress = {},
                                           const CancelToken* cancel = nullptr);

// The OUT.h5ad of `candies run`: obs index = spot names, obs["candies_cluster"]
// (categorical; with the selection's per-modality clusters also
// ["candies_cluster_mod1"], ["candies_cluster_mod2"]; with labels_key
// ["candies_truth"]), obsm["X_candies"], ["X_candies_mod1"], ["X_candies_mod2"],
// ["X_candies_denoised"], ["spatial"], uns["candies"], uns["rank_genes_groups"].
AnnData ResultToAnnData(const PipelineResult& result);

}  // namespace candies
