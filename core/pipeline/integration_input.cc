#include "core/pipeline/integration_input.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/graph/graph.h"
#include "core/graph/layout.h"
#include "core/metrics/metrics.h"
#include "core/util/status_macros.h"

namespace candies {

namespace {
// The layout graph, checked against the rows of the tensor it will score.
absl::StatusOr<const LayoutGraph*> GraphFor(LazyLayoutGraph& layout_graph, int64_t rows) {
  if (layout_graph.n_obs() != rows)
    return absl::InvalidArgumentError(absl::StrCat("obsm[\"spatial\"]: ", layout_graph.n_obs(),
                                                   " spots, the embedding has ", rows, " rows"));
  return layout_graph.Get();
}
}  // namespace

absl::StatusOr<HighInputChoice> ChooseHighInput(const torch::Tensor& features,
                                                LazyLayoutGraph& layout_graph,
                                                const PipelineOptions& options,
                                                const torch::Device& device) {
  HighInputChoice out;
  out.uns = UnsValue::Map();
  out.morans_i = NAN;
  HighInput want = options.high_input;
  if (want == HighInput::kFeatures) {
    out.chosen = want;
    out.features = features;
    out.uns.Set("chosen", UnsValue::String(HighInputName(want)));
    return out;
  }
  if (want == HighInput::kEmbedding) {
    out.chosen = want;
    out.uns.Set("chosen", UnsValue::String(HighInputName(want)));
    return out;
  }
  if (options.high_input_fallback == HighInput::kAuto)
    return absl::InvalidArgumentError("high_input_fallback: must not be auto");
  const int64_t n = features.size(0);
  CANDIES_ASSIGN_OR_RETURN(const LayoutGraph* g, GraphFor(layout_graph, n));
  const LayoutNeighbours& layout = g->layout;
  const KnnResult& knn = g->knn;
  out.uns.Set("layout_k", UnsValue::Int(layout.k));
  out.uns.Set("layout_lattice", UnsValue::Bool(layout.lattice));
  if (want == HighInput::kAuto) {
    out.morans_i = MultivariateMoransI(features, knn);
    out.uns.Set("morans_i", UnsValue::Float(out.morans_i));
    out.uns.Set("min_morans_i", UnsValue::Float(options.high_input_min_morans_i));
    want = out.morans_i >= options.high_input_min_morans_i ? HighInput::kFeatures
                                                           : options.high_input_fallback;
  }
  out.chosen = want;
  out.uns.Set("chosen", UnsValue::String(HighInputName(want)));
  if (want == HighInput::kFeatures) {
    out.features = features;
  } else if (want == HighInput::kSmoothed) {
    torch::Tensor a = NormalizedAdjacency(knn, n, device);
    out.features = torch::mm(a, features.to(device)).to(features.device()).contiguous();
  }
  return out;
}

absl::StatusOr<LowInputChoice> ChooseLowInput(const torch::Tensor& embedding,
                                              const torch::Tensor& denoised,
                                              LazyLayoutGraph& layout_graph,
                                              const PipelineOptions& options) {
  LowInputChoice out;
  out.uns = UnsValue::Map();
  out.morans_i_embedding = out.morans_i_denoised = NAN;
  if (!options.denoised_input_guard || !embedding.defined()) {
    // Off, or a trained model was applied: then the low-quality modality was
    // never encoded and the denoised embedding is its only one.
    out.uns.Set("chosen", UnsValue::String("denoised"));
    out.uns.Set("rule", UnsValue::String(embedding.defined() ? "always" : "model applied"));
    return out;
  }
  if (embedding.size(0) != denoised.size(0))
    return absl::InvalidArgumentError(absl::StrCat("denoised: ", denoised.size(0),
                                                   " rows, the embedding has ", embedding.size(0)));
  const int64_t n = embedding.size(0);
  CANDIES_ASSIGN_OR_RETURN(const LayoutGraph* g, GraphFor(layout_graph, n));
  const KnnResult& knn = g->knn;
  out.morans_i_embedding = MultivariateMoransI(embedding, knn);
  out.morans_i_denoised = MultivariateMoransI(denoised, knn);
  // A denoiser should make the noisy modality more coherent across
  // neighbouring spots; when it made it less, its output is not trusted.
  out.use_denoised =
      out.morans_i_denoised >= out.morans_i_embedding + options.denoised_min_morans_gain;
  out.uns.Set("chosen", UnsValue::String(out.use_denoised ? "denoised" : "embedding"));
  out.uns.Set("rule", UnsValue::String("morans_i"));
  out.uns.Set("morans_i_embedding", UnsValue::Float(out.morans_i_embedding));
  out.uns.Set("morans_i_denoised", UnsValue::Float(out.morans_i_denoised));
  out.uns.Set("min_morans_gain", UnsValue::Float(options.denoised_min_morans_gain));
  return out;
}

absl::StatusOr<JointSmoothing> SmoothJoint(const torch::Tensor& joint, LazyLayoutGraph& layout_graph,
                                           const PipelineOptions& options, const torch::Device& device,
                                           const ClusterOptions* cluster) {
  JointSmoothing out;
  const int64_t n = joint.size(0);
  CANDIES_ASSIGN_OR_RETURN(const LayoutGraph* g, GraphFor(layout_graph, n));
  const LayoutNeighbours& layout = g->layout;
  const KnnResult& knn = g->knn;
  out.uns = UnsValue::Map();
  out.uns.Set("lattice", UnsValue::Bool(layout.lattice));
  out.uns.Set("spacing", UnsValue::Float(layout.spacing));
  out.uns.Set("k", UnsValue::Int(layout.k));
  const bool fixed = options.joint_smoothing_hops > 0;
  const bool agreement = !fixed && cluster != nullptr && options.joint_smoothing_min_agreement > 0;
  torch::Tensor a = NormalizedAdjacency(knn, n, device);
  torch::Tensor z = joint.to(device);
  double mi = MultivariateMoransI(z, knn);
  out.uns.Set("morans_i_before", UnsValue::Float(mi));
  const int64_t max_hops = fixed ? options.joint_smoothing_hops : options.joint_smoothing_max_auto_hops;
  std::vector<int32_t> labels;  // of z, when computed
  std::vector<double> agreements;  // ARI of hop h's labels with hop h+1's
  while (out.hops < max_hops) {
    const bool coherent = !fixed && mi >= options.joint_smoothing_min_morans_i;
    if (coherent && !agreement) break;  // before the product: nothing would use it
    torch::Tensor next = torch::mm(a, z);
    std::vector<int32_t> next_labels;
    if (coherent) {
      if (labels.empty()) {
        CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(z.to(torch::kCPU), *cluster));
        labels = std::move(c.labels);
      }
      CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(next.to(torch::kCPU), *cluster));
      next_labels = std::move(c.labels);
      const double ag = metrics::AdjustedRandIndex(labels, next_labels);
      agreements.push_back(ag);
      if (ag >= options.joint_smoothing_min_agreement) break;
    }
    z = std::move(next);
    labels = std::move(next_labels);
    ++out.hops;
    mi = MultivariateMoransI(z, knn);
  }
  out.labels = std::move(labels);
  out.uns.Set("hops", UnsValue::Int(out.hops));
  out.uns.Set("morans_i_after", UnsValue::Float(mi));
  if (agreement) out.uns.Set("agreements", UnsValue::FloatArray(std::move(agreements)));
  out.uns.Set("rule", UnsValue::String(fixed ? "fixed" : agreement ? "auto+agreement" : "auto"));
  out.joint = z.to(torch::kCPU, torch::kFloat32).contiguous();
  return out;
}

}  // namespace candies
