// What goes into the integration and what comes out of it before clustering
// (issue 13): the high-quality modality's input (HighInput) and the spatial
// smoothing of the joint embedding, rules kept apart from the pipeline so they
// can be tested and read on their own. Rationale and numbers: docs/SCIENCE.md,
// "Integration input".
//
// Owner: pipeline area. Consumer: pipeline.cc.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/cluster/cluster.h"
#include "core/graph/layout_graph.h"
#include "core/io/anndata.h"
#include "core/pipeline/pipeline.h"

namespace candies {

struct HighInputChoice {
  HighInput chosen = HighInput::kFeatures;  // never kAuto
  // The tensor to use; undefined for kEmbedding (the GAE embedding stays).
  torch::Tensor features;
  double morans_i = 0;  // of `features` on the layout graph (NaN when not computed)
  UnsValue uns;         // uns["candies"]["integration_input"]: chosen, rule, Moran's I, layout k
};

// `features`: the high-quality modality's preprocessed features (N x d);
// `layout`: the section's layout graph (read only by kAuto and kSmoothed). kAuto computes the features' multivariate
// Moran's I over the layout's own neighbourhood (DeriveLayoutNeighbours) and
// takes the features when it is >= options.high_input_min_morans_i, else
// options.high_input_fallback. kSmoothed averages the features once over the
// same neighbourhood (normalised adjacency with self-loops).
absl::StatusOr<HighInputChoice> ChooseHighInput(const torch::Tensor& features,
                                                LazyLayoutGraph& layout,
                                                const PipelineOptions& options,
                                                const torch::Device& device);

struct LowInputChoice {
  bool use_denoised = true;
  double morans_i_embedding = 0;  // NaN when the guard is off
  double morans_i_denoised = 0;
  UnsValue uns;  // uns["candies"]["denoise"]["integration_input"]
};

// The denoiser guard (PipelineOptions::denoised_input_guard): whether the
// integration takes `denoised` or the GAE `embedding` it was made from, by
// their multivariate Moran's I over the layout's own neighbourhood. An
// undefined `embedding` (a trained model applied: the low-quality modality is
// not encoded) keeps the denoised one.
absl::StatusOr<LowInputChoice> ChooseLowInput(const torch::Tensor& embedding,
                                              const torch::Tensor& denoised,
                                              LazyLayoutGraph& layout,
                                              const PipelineOptions& options);

struct JointSmoothing {
  torch::Tensor joint;  // the smoothed (or untouched) joint embedding, CPU float32
  int64_t hops = 0;
  // The clustering of `joint` when the agreement rule computed it (same
  // options as the job's clustering, so the pipeline reuses it); else empty.
  std::vector<int32_t> labels;
  UnsValue uns;  // uns["candies"]["layout"]: lattice, spacing, k, hops, Moran's I, agreements
};

// Fixed options.joint_smoothing_hops > 0: that many hops. Otherwise, with
// joint_smoothing_auto, one more hop (at most joint_smoothing_max_auto_hops)
// while either
//   - the embedding's multivariate Moran's I on the layout graph is below
//     joint_smoothing_min_morans_i (per-spot noise dominates), or
//   - `cluster` is given and its labels after one more hop agree with the
//     current ones below joint_smoothing_min_agreement (ARI): the domains are
//     not yet stable under averaging.
// One hop: X <- A X, A the layout's normalised adjacency with self-loops
// (DeriveLayoutNeighbours, core/graph/layout.h).
absl::StatusOr<JointSmoothing> SmoothJoint(const torch::Tensor& joint, LazyLayoutGraph& layout,
                                           const PipelineOptions& options, const torch::Device& device,
                                           const ClusterOptions* cluster = nullptr);

}  // namespace candies
