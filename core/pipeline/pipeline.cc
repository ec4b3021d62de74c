#include "core/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/analysis/domain_markers.h"
#include "core/graph/graph.h"
#include "core/graph/layout.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/integration_input.h"
#include "core/pipeline/modality_selection.h"
#include "core/pipeline/trained_model_internal.h"
#include "core/runtime/runtime.h"
#include "core/runtime/threads.h"
#include "core/util/build_info.h"
#include "core/util/status_macros.h"

#ifndef CANDIES_VERSION
#define CANDIES_VERSION "dev"
#endif

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

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

absl::Status CheckModality(const ModalityInput& m, const char* role) {
  if (m.adata == nullptr) return absl::InvalidArgumentError(absl::StrCat(role, ": no AnnData given"));
  const AnnData& a = *m.adata;
  if (!a.has_x || a.X.n_rows == 0 || a.X.n_cols == 0)
    return absl::InvalidArgumentError(absl::StrCat(role, " (", m.name, "): X is empty or missing"));
  if (a.X.n_rows != a.n_obs())
    return absl::InvalidArgumentError(absl::StrCat(role, " (", m.name, "): X has ", a.X.n_rows,
                                                   " rows but obs has ", a.n_obs()));
  auto it = a.obsm.find("spatial");
  if (it == a.obsm.end())
    return absl::InvalidArgumentError(
        absl::StrCat(role, " (", m.name, "): obsm[\"spatial\"] is missing (spot coordinates)"));
  if (it->second.n_rows != a.n_obs() || it->second.n_cols < 2)
    return absl::InvalidArgumentError(absl::StrCat(
        role, " (", m.name, "): obsm[\"spatial\"] must be n_obs x 2 (is ", it->second.n_rows, " x ",
        it->second.n_cols, ")"));
  // Zero variance: every stored value equal and the matrix fully dense.
  const auto& v = a.X.values;
  if (!v.empty()) {
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const bool full = a.X.nnz() == a.X.n_rows * a.X.n_cols;
    if (*lo == *hi && (full || *lo == 0.0f))
      return absl::InvalidArgumentError(
          absl::StrCat(role, " (", m.name, "): X has zero variance (every value is ", *lo, ")"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(role, " (", m.name, "): X has no non-zero value"));
  }
  return absl::OkStatus();
}

std::vector<float> Coords(const AnnData& a) {
  Matrix s = ToDense(a.obsm.at("spatial"));
  std::vector<float> out(static_cast<size_t>(2 * s.n_rows));
  for (int64_t i = 0; i < s.n_rows; ++i) {
    out[2 * i] = s.values[i * s.n_cols];
    out[2 * i + 1] = s.values[i * s.n_cols + 1];
  }
  return out;
}

// Row i of mod1 is row order[i] of mod2. By obs name; when no name is shared,
// by exact coordinates. Unmatched spots are an error, never silently dropped.
absl::StatusOr<std::vector<int64_t>> MatchSpots(const AnnData& a1, const AnnData& a2) {
  const int64_t n1 = a1.n_obs(), n2 = a2.n_obs();
  std::unordered_map<std::string, int64_t> by_name;
  for (int64_t j = 0; j < n2; ++j) by_name.emplace(a2.obs.index[j], j);
  std::vector<int64_t> order(static_cast<size_t>(n1), -1);
  int64_t shared = 0;
  for (int64_t i = 0; i < n1; ++i) {
    auto it = by_name.find(a1.obs.index[i]);
    if (it != by_name.end()) { order[i] = it->second; ++shared; }
  }
  std::string how = "obs name";
  if (shared == 0) {
    how = "coordinates (no obs name is shared)";
    std::map<std::pair<float, float>, int64_t> by_xy;
    auto c2 = Coords(a2);
    for (int64_t j = 0; j < n2; ++j) by_xy.emplace(std::make_pair(c2[2 * j], c2[2 * j + 1]), j);
    auto c1 = Coords(a1);
    for (int64_t i = 0; i < n1; ++i) {
      auto it = by_xy.find({c1[2 * i], c1[2 * i + 1]});
      if (it != by_xy.end()) { order[i] = it->second; ++shared; }
    }
  }
  std::set<int64_t> used(order.begin(), order.end());
  used.erase(-1);
  if (shared != n1 || n1 != n2 || static_cast<int64_t>(used.size()) != n1) {
    std::vector<std::string> examples;
    for (int64_t i = 0; i < n1 && examples.size() < 5; ++i)
      if (order[i] < 0) examples.push_back(a1.obs.index[i]);
    return absl::InvalidArgumentError(absl::StrCat(
        "spot matching by ", how, ": ", n1 - shared, " of ", n1, " mod1 spots have no match in mod2 (",
        n2, " spots, ", n2 - static_cast<int64_t>(used.size()), " unmatched)",
        examples.empty() ? "" : absl::StrCat("; e.g. ", absl::StrJoin(examples, ", ")),
        ". Subset both modalities to the same spots first."));
  }
  return order;
}

AnnData ReorderRows(const AnnData& a, const std::vector<int64_t>& rows) {
  AnnData out;
  out.X = Subset(a.X, rows);
  out.var = a.var;
  for (int64_t r : rows) out.obs.index.push_back(a.obs.index[r]);
  out.obsm["spatial"] = Subset(a.obsm.at("spatial"), rows);
  return out;
}

absl::StatusOr<std::vector<int32_t>> TruthLabels(const AnnData& a1, const AnnData* a2,
                                                 const std::vector<int64_t>& order,
                                                 const std::string& key,
                                                 std::vector<std::string>* names) {
  const Column* col = a1.obs.Find(key);
  bool from2 = false;
  if (col == nullptr && a2 != nullptr) { col = a2->obs.Find(key); from2 = true; }
  if (col == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("labels_key: obs column \"", key, "\" is in neither modality"));
  std::vector<std::string> labels;
  for (int64_t i = 0; i < a1.n_obs(); ++i)
    labels.push_back(col->ValueAsString(from2 ? order[i] : i));
  if (names != nullptr) *names = labels;
  return metrics::EncodeLabels(labels);
}

UnsValue Params(const PipelineOptions& o) {
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

absl::StatusOr<PipelineResult> RunPipelineImpl(const ModalityInput& mod1, const ModalityInput& mod2,
                                               const PipelineOptions& options,
                                               const ProgressSink& progress,
                                               const CancelToken* cancel) {
  if (options.n_clusters < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("n_clusters: must be >= 1 (got ", options.n_clusters, ")"));
  CANDIES_RETURN_IF_ERROR(CheckModality(mod1, "mod1"));
  CANDIES_RETURN_IF_ERROR(CheckModality(mod2, "mod2"));
  const AnnData& a1 = *mod1.adata;
  const int64_t n = a1.n_obs();
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
  CANDIES_ASSIGN_OR_RETURN(torch::Device device, ResolveDevice(options.device));
  const ThreadSettings threads = ConfigureThreads(options.threads);
  SeedEverything(options.seed);
  const auto t_all = Clock::now();

  PipelineResult result;
  result.obs_names = a1.obs.index;
  result.spatial = Coords(a1);
  // The layout's own neighbourhood, built once when a rule first reads it.
  LazyLayoutGraph layout_graph(result.spatial, n);
  UnsValue uns = UnsValue::Map();
  uns.Set("version", UnsValue::String(CANDIES_VERSION));
  uns.Set("seed", UnsValue::Int(static_cast<int64_t>(options.seed)));
  uns.Set("device", UnsValue::String(DeviceName(device)));
  uns.Set("torch", UnsValue::String(GetBuildInfo().torch));
  uns.Set("cuda", UnsValue::String(GetBuildInfo().cuda));  // "" for a CPU-only LibTorch
  uns.Set("params", Params(options));
  uns.Set("threads", UnsValue::String(DescribeThreads(threads)));
  auto stage_done = [&](const std::string& stage, Clock::time_point t0) {
    const double s = Since(t0);
    result.stage_seconds.emplace_back(stage, s);
    ProgressEvent ev{stage, 0, 0, std::nan(""), 0, absl::StrCat("done in ", s, " s")};
    return ReportAndCheckCancel(progress, cancel, ev);
  };

  // Align mod2 to mod1's spots.
  CANDIES_ASSIGN_OR_RETURN(std::vector<int64_t> order, MatchSpots(a1, *mod2.adata));
  std::vector<int32_t> truth;
  if (!options.labels_key.empty()) {
    CANDIES_ASSIGN_OR_RETURN(truth, TruthLabels(a1, mod2.adata.get(), order, options.labels_key,
                                                   &result.truth_labels));
  }

  ClusterOptions copts = options.cluster;
  copts.n_clusters = options.n_clusters;
  copts.seed = options.seed;

  if (options.kind == JobKind::kCluster) {
    auto it = a1.obsm.find("X_candies");
    if (it == a1.obsm.end())
      return absl::InvalidArgumentError(
          "mod1: obsm[\"X_candies\"] is missing (kind cluster re-clusters an existing embedding)");
    auto t0 = Clock::now();
    result.joint = MatrixToTensor(it->second);
    CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(result.joint, copts));
    result.clusters = c.labels;
    stage_done("cluster", t0);
  } else {
    AnnData a2 = ReorderRows(*mod2.adata, order);
    const bool denoise = options.kind == JobKind::kFull || options.kind == JobKind::kDenoise;
    // A trained model (in memory, or from load_model_dir) fixes which modality is
    // low quality, the high-quality recipe and encoder, and the denoiser.
    std::shared_ptr<const TrainedModel> model = options.pretrained;
    if (model == nullptr && !options.load_model_dir.empty()) {
      CANDIES_ASSIGN_OR_RETURN(model, LoadTrainedModel(options.load_model_dir, options.device));
    }
    int low = 0;
    if (model != nullptr) {
      if (!denoise)
        return absl::InvalidArgumentError(
            "model: a trained model is applied by kind full or denoise only");
      low = model->low_quality == "mod1" ? 1 : 2;
      const ModalityInput& lm = low == 1 ? mod1 : mod2;
      const ModalityInput& hm = low == 1 ? mod2 : mod1;
      if (lm.kind != model->low_kind || hm.kind != model->high_kind)
        return absl::InvalidArgumentError(absl::StrCat(
            "model: trained with ", model->low_quality, " = ", ModalityKindName(model->low_kind),
            " (low quality) and the other modality ", ModalityKindName(model->high_kind),
            "; got mod1 = ", ModalityKindName(mod1.kind), ", mod2 = ", ModalityKindName(mod2.kind)));
      if (options.low_quality != LowQuality::kAuto &&
          (options.low_quality == LowQuality::kMod1) != (low == 1))
        return absl::InvalidArgumentError(absl::StrCat(
            "low_quality: the trained model denoises ", model->low_quality));
    }

    // Preprocess. With a model the high-quality modality uses the model's
    // features and loadings, and the low-quality one is not needed.
    auto t0 = Clock::now();
    auto preprocess = [&](const AnnData& a, const ModalityInput& m, const char* role,
                          bool fixed) -> absl::StatusOr<PreprocessedModality> {
      PreprocessOptions popts = options.preprocess;
      popts.seed = options.seed;
      if (fixed) {
        popts.fixed_features = model->high_features;
        popts.target_sum = model->target_sum;
        popts.scale_max = model->scale_max;
      }
      auto p = PreprocessModality(a, m.kind, popts);
      if (!p.ok())
        return absl::Status(p.status().code(),
                            absl::StrCat(role, " (", m.name, "): ", p.status().message()));
      if (fixed) p->features = torch::mm(p->expression, model->high_loadings);
      return p;
    };
    std::optional<PreprocessedModality> p1, p2;
    if (model == nullptr || low == 2) {
      CANDIES_ASSIGN_OR_RETURN(p1, preprocess(a1, mod1, "mod1", model != nullptr));
    }
    if (model == nullptr || low == 1) {
      CANDIES_ASSIGN_OR_RETURN(p2, preprocess(a2, mod2, "mod2", model != nullptr));
    }
    const int64_t gae_k = model != nullptr ? model->spatial_k : options.gae.spatial_k;
    CANDIES_ASSIGN_OR_RETURN(KnnResult spatial_knn, SpatialKnn(result.spatial, n, 2, gae_k));
    torch::Tensor adj_gae = NormalizedAdjacency(spatial_knn, n, device);
    if (stage_done("preprocess", t0)) return absl::CancelledError("cancelled after preprocess");

    // Graph auto-encoders (with a model: the high-quality encoder, no training).
    std::shared_ptr<GaeModel> gae1, gae2;
    auto train = [&](const PreprocessedModality& p, const std::string& stage,
                     std::shared_ptr<GaeModel>* kept) -> absl::StatusOr<torch::Tensor> {
      auto t = Clock::now();
      const bool rna = p.kind == ModalityKind::kRna;
      CANDIES_ASSIGN_OR_RETURN(
          GaeResult g, TrainGae(p.features, rna ? p.counts : torch::Tensor(), adj_gae,
                                rna ? options.gae.rna_latent : options.gae.latent, options.gae,
                                device, stage, progress, cancel));
      stage_done(stage, t);
      *kept = g.model;
      return g.embedding;
    };
    if (model == nullptr) {
      CANDIES_ASSIGN_OR_RETURN(result.emb_mod1, train(*p1, "gae_mod1", &gae1));
      CANDIES_ASSIGN_OR_RETURN(result.emb_mod2, train(*p2, "gae_mod2", &gae2));
    } else {
      t0 = Clock::now();
      const PreprocessedModality& ph = low == 1 ? *p2 : *p1;
      CANDIES_ASSIGN_OR_RETURN(torch::Tensor high_emb,
                               GaeEncode(*model->high_gae, ph.features, adj_gae, device));
      (low == 1 ? result.emb_mod2 : result.emb_mod1) = high_emb;
      if (stage_done(low == 1 ? "gae_mod2" : "gae_mod1", t0))
        return absl::CancelledError("cancelled after the graph auto-encoder");
    }

    // Low-quality modality.
    t0 = Clock::now();
    if (model != nullptr) {
      // Decided by the model.
    } else if (options.low_quality == LowQuality::kMod1) {
      low = 1;
    } else if (options.low_quality == LowQuality::kMod2) {
      low = 2;
    } else {
      CANDIES_ASSIGN_OR_RETURN(
          ModalityScores sc,
          SelectLowQuality(result.emb_mod1, result.emb_mod2, copts, options.selection_method, truth,
                           spatial_knn.neighbors, spatial_knn.k));
      low = sc.low;
      result.modality_clusters = {std::move(sc.labels1), std::move(sc.labels2)};
      UnsValue sel = UnsValue::Map();
      sel.Set("score_mod1", UnsValue::Float(sc.score1));
      sel.Set("score_mod2", UnsValue::Float(sc.score2));
      sel.Set("supervised", UnsValue::Bool(sc.supervised));
      uns.Set("selection", sel);
    }
    result.low_quality = low == 1 ? "mod1" : "mod2";
    if (stage_done("select", t0)) return absl::CancelledError("cancelled after selection");

    // Denoising (kFull, kDenoise): the low-quality embedding is replaced by the
    // one the conditional diffusion model generates from the high-quality one.
    torch::Tensor in1 = result.emb_mod1, in2 = result.emb_mod2;
    if (denoise) {
      t0 = Clock::now();
      const torch::Tensor& high_emb = low == 1 ? in2 : in1;
      UnsValue du = UnsValue::Map();
      std::shared_ptr<TrainedModel> trained;
      std::shared_ptr<const TrainedDenoiser> denoiser;
      if (model != nullptr) {
        CANDIES_ASSIGN_OR_RETURN(result.denoised,
                                 ApplyDenoiser(*model->denoiser, high_emb, device, progress, cancel));
      } else {
        const torch::Tensor& low_emb = low == 1 ? in1 : in2;
        DiffusionOptions dopts = options.diffusion;
        dopts.seed = options.seed;
        CANDIES_ASSIGN_OR_RETURN(DenoiseResult dr, DenoiseKFold(low_emb, high_emb, dopts, device,
                                                                progress, cancel));
        result.denoised = dr.denoised;
        UnsValue losses = UnsValue::Map();
        for (size_t f = 0; f < dr.fold_losses.size(); ++f)
          losses.Set(absl::StrCat("fold", f + 1), UnsValue::FloatArray(dr.fold_losses[f]));
        du.Set("losses", losses);
        du.Set("train_seconds", UnsValue::Float(dr.train_seconds));
        du.Set("sample_seconds", UnsValue::Float(dr.sample_seconds));
        // Everything a new section of the same panel needs (trained_model.h).
        const PreprocessedModality& pl = low == 1 ? *p1 : *p2;
        const PreprocessedModality& ph = low == 1 ? *p2 : *p1;
        trained = std::make_shared<TrainedModel>();
        trained->low_quality = result.low_quality;
        trained->low_kind = pl.kind;
        trained->high_kind = ph.kind;
        trained->target_sum = options.preprocess.target_sum;
        trained->scale_max = options.preprocess.scale_max;
        trained->spatial_k = options.gae.spatial_k;
        trained->high_features = ph.feature_names;
        trained->high_loadings = PcaLoadings(ph.expression, ph.features);
        trained->high_gae = low == 1 ? gae2 : gae1;
        trained->denoiser = dr.model;
        trained->low_gae = low == 1 ? gae1 : gae2;
        trained->low_loadings = PcaLoadings(pl.expression, pl.features);
        trained->low_features = pl.feature_names;
        trained->device = DeviceName(device);
      }
      const DiffusionOptions& used =
          model != nullptr ? DenoiserOptions(*model->denoiser) : options.diffusion;
      du.Set("pretrained", UnsValue::Bool(model != nullptr));
      du.Set("schedule", UnsValue::String("cosine"));
      du.Set("timesteps", UnsValue::Int(used.timesteps));
      du.Set("sampler", UnsValue::String(DiffusionSamplerName(used.sampler)));
      du.Set("sample_steps", UnsValue::Int(used.sampler == DiffusionSampler::kDdpm
                                               ? used.timesteps
                                               : (used.sample_steps > 0 ? used.sample_steps : 50)));
      du.Set("folds", UnsValue::Int(model != nullptr ? 0 : used.folds));
      du.Set("hidden", UnsValue::Int(used.hidden));
      du.Set("depth", UnsValue::Int(used.depth));
      du.Set("heads", UnsValue::Int(used.heads));
      du.Set("temperature", UnsValue::Float(used.temperature));

      // The pretrained decoder: denoised embedding -> denoised expression.
      const TrainedModel& m = model != nullptr ? *model : *trained;
      CANDIES_ASSIGN_OR_RETURN(torch::Tensor expr,
                               DecodeExpression(*m.low_gae, m.low_loadings, result.denoised, device));
      auto dx = std::make_shared<AnnData>();
      dx->obs.index = result.obs_names;
      dx->var.index = m.low_features;
      dx->X = TensorToMatrix(expr.to(torch::kFloat32).contiguous());
      dx->obsm["spatial"] = Matrix::Dense(n, 2, result.spatial);
      if (options.keep_raw_in_denoised) {
        // The input values of the same features, for before/after comparisons.
        const AnnData& la = low == 1 ? a1 : a2;
        std::unordered_map<std::string, int64_t> col;
        for (int64_t c = 0; c < la.X.n_cols && c < static_cast<int64_t>(la.var.index.size()); ++c)
          col.emplace(la.var.index[c], c);
        std::vector<int64_t> cols;
        for (const auto& f : m.low_features) {
          auto it = col.find(f);
          if (it == col.end()) break;
          cols.push_back(it->second);
        }
        if (cols.size() == m.low_features.size()) {
          std::vector<int64_t> rows(n);
          for (int64_t i = 0; i < n; ++i) rows[i] = i;
          dx->layers["raw"] = Subset(la.X, rows, cols);
        }
      }
      result.denoised_expression = std::move(dx);
      if (trained != nullptr) {
        if (!options.save_model_dir.empty())
          CANDIES_RETURN_IF_ERROR(SaveTrainedModel(*trained, options.save_model_dir));
        if (options.keep_trained_model) result.trained_model = trained;
      }
      CANDIES_ASSIGN_OR_RETURN(LowInputChoice lc,
                               ChooseLowInput(low == 1 ? in1 : in2, result.denoised, layout_graph,
                                              options));
      du.Set("integration_input", std::move(lc.uns));
      uns.Set("denoise", du);
      if (stage_done("denoise", t0)) return absl::CancelledError("cancelled after denoising");
      if (lc.use_denoised) (low == 1 ? in1 : in2) = result.denoised;
    }
    uns.Set("denoised", UnsValue::Bool(result.denoised.defined()));

    if (options.kind == JobKind::kDenoise) {
      // The job stops after the denoiser: clusters of the denoised embedding.
      t0 = Clock::now();
      CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(result.denoised, copts));
      result.clusters = c.labels;
      result.joint = result.denoised;
      stage_done("cluster", t0);
    } else {
      // Integration: feature graphs on each modality's input, spatial graph shared.
      t0 = Clock::now();
      {
        // The high-quality modality is preprocessed in every path (with a
        // trained model too: the model's features and loadings).
        const std::optional<PreprocessedModality>& ph = low == 1 ? p2 : p1;
        CANDIES_ASSIGN_OR_RETURN(HighInputChoice hc,
                                 ChooseHighInput(ph->features, layout_graph, options, device));
        if (hc.features.defined()) (low == 1 ? in2 : in1) = hc.features;
        uns.Set("integration_input", hc.uns);
      }
      IntegrationGraphs graphs;
      CANDIES_ASSIGN_OR_RETURN(KnnResult sk,
                               SpatialKnn(result.spatial, n, 2, options.integration.spatial_k));
      graphs.spatial1 = NormalizedAdjacency(sk, n, device);
      graphs.spatial2 = graphs.spatial1;
      CANDIES_ASSIGN_OR_RETURN(KnnResult f1, FeatureKnn(in1, options.integration.feature_k));
      CANDIES_ASSIGN_OR_RETURN(KnnResult f2, FeatureKnn(in2, options.integration.feature_k));
      graphs.feature1 = NormalizedAdjacency(f1, n, device);
      graphs.feature2 = NormalizedAdjacency(f2, n, device);
      // Reseed: the integration must not depend on how much of the global
      // generator earlier stages used (saving a model constructs modules, and
      // an applied model skips training), so that --save-model, a daemon run
      // and a local run give the same result for the same seed.
      SeedEverything(options.seed ^ kIntegrationSeedSalt);
      CANDIES_ASSIGN_OR_RETURN(IntegrationResult ir,
                               TrainIntegration(in1, in2, graphs, options.integration, device,
                                                progress, cancel));
      result.joint = ir.joint;
      if (options.joint_smoothing_hops > 0 || options.joint_smoothing_auto) {
        CANDIES_ASSIGN_OR_RETURN(JointSmoothing js,
                                 SmoothJoint(result.joint, layout_graph, options, device, &copts));
        result.joint = std::move(js.joint);
        result.clusters = std::move(js.labels);  // empty unless the agreement rule clustered
        uns.Set("layout", std::move(js.uns));
      }
      if (stage_done("integrate", t0)) return absl::CancelledError("cancelled after integration");
      t0 = Clock::now();
      if (result.clusters.empty()) {
        CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(result.joint, copts));
        result.clusters = c.labels;
      }
      stage_done("cluster", t0);
    }
  }

  if (!truth.empty()) {
    result.metrics = metrics::SupervisedReport(truth, result.clusters);
  }
  if (options.rank_markers && !result.clusters.empty()) {
    // Marker features of the RNA modality (else mod1); a failure (a domain of
    // one spot) is a warning, not a failed job.
    auto t0 = Clock::now();
    const bool use2 = mod1.kind != ModalityKind::kRna && mod2.kind == ModalityKind::kRna;
    absl::StatusOr<UnsValue> markers =
        use2 ? DomainMarkers(*mod2.adata, order, result.clusters, "mod2")
             : DomainMarkers(a1, {}, result.clusters, "mod1");
    if (markers.ok()) {
      result.markers = std::move(*markers);
    } else {
      result.warnings.push_back(absl::StrCat("marker features: ", markers.status().message()));
    }
    stage_done("markers", t0);
  }
  if (!result.warnings.empty()) uns.Set("warnings", UnsValue::StringArray(result.warnings));
  result.stage_seconds.emplace_back("total", Since(t_all));
  uns.Set("low_quality", UnsValue::String(result.low_quality));
  UnsValue secs = UnsValue::Map();
  for (const auto& [k, v] : result.stage_seconds) secs.Set(k, UnsValue::Float(v));
  uns.Set("seconds", secs);
  UnsValue mets = UnsValue::Map();
  for (const auto& [k, v] : result.metrics) mets.Set(k, UnsValue::Float(v));
  uns.Set("metrics", mets);
  result.uns = std::move(uns);
  return result;
}

Matrix ToMatrix32(const torch::Tensor& t) {
  return TensorToMatrix(t.to(torch::kCPU, torch::kFloat32).contiguous());
}

}  // namespace

absl::StatusOr<PipelineResult> RunPipeline(const ModalityInput& mod1, const ModalityInput& mod2,
                                           const PipelineOptions& options,
                                           const ProgressSink& progress,
                                           const CancelToken* cancel) {
  try {
    // Records every stage's per-step loss for uns["candies"]["losses"] (the
    // report's loss curves) and passes the event on.
    std::mutex mu;
    std::vector<std::pair<std::string, std::vector<double>>> losses;
    ProgressSink recording = [&](const ProgressEvent& ev) {
      if (ev.step > 0 && std::isfinite(ev.loss)) {
        std::lock_guard<std::mutex> lock(mu);
        auto it = std::find_if(losses.begin(), losses.end(),
                               [&](const auto& l) { return l.first == ev.stage; });
        if (it == losses.end()) it = losses.emplace(losses.end(), ev.stage, std::vector<double>{});
        it->second.push_back(ev.loss);
      }
      if (progress) progress(ev);
    };
    absl::StatusOr<PipelineResult> r = RunPipelineImpl(mod1, mod2, options, recording, cancel);
    if (r.ok() && !losses.empty()) {
      UnsValue l = UnsValue::Map();
      for (auto& [stage, v] : losses) l.Set(stage, UnsValue::FloatArray(std::move(v)));
      r->uns.Set("losses", std::move(l));
    }
    return r;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("LibTorch error: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("pipeline error: ", e.what()));
  }
}

AnnData ResultToAnnData(const PipelineResult& result) {
  AnnData a;
  a.has_x = false;
  const int64_t n = static_cast<int64_t>(result.obs_names.size());
  a.obs.index = result.obs_names;
  std::vector<std::string> labels;
  labels.reserve(result.clusters.size());
  for (int32_t c : result.clusters) labels.push_back(std::to_string(c));
  a.obs.Set(Column::Categorical("candies_cluster", labels));
  if (result.joint.defined()) a.obsm["X_candies"] = ToMatrix32(result.joint);
  if (result.emb_mod1.defined()) a.obsm["X_candies_mod1"] = ToMatrix32(result.emb_mod1);
  if (result.emb_mod2.defined()) a.obsm["X_candies_mod2"] = ToMatrix32(result.emb_mod2);
  if (result.denoised.defined()) a.obsm["X_candies_denoised"] = ToMatrix32(result.denoised);
  if (static_cast<int64_t>(result.spatial.size()) == 2 * n)
    a.obsm["spatial"] = Matrix::Dense(n, 2, result.spatial);
  a.uns = UnsValue::Map();
  a.uns.Set("candies", result.uns);
  if (result.modality_clusters.size() == 2 && result.modality_clusters[0].size() == labels.size()) {
    for (int m = 0; m < 2; ++m) {
      std::vector<std::string> l;
      for (int32_t c : result.modality_clusters[m]) l.push_back(std::to_string(c));
      a.obs.Set(Column::Categorical(m == 0 ? "candies_cluster_mod1" : "candies_cluster_mod2", l));
    }
  }
  if (result.truth_labels.size() == labels.size())
    a.obs.Set(Column::Categorical("candies_truth", result.truth_labels));
  if (!result.markers.children.empty()) a.uns.Set("rank_genes_groups", result.markers);
  return a;
}

}  // namespace candies
