// RunPipeline: one job's stages in order (preprocess, graph auto-encoders,
// selection, denoising, integration, clustering, markers), each a function
// below that reads and fills one JobRun. Input checks and option validation
// are in pipeline_inputs.cc and pipeline_options.cc.
#include "core/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/analysis/domain_markers.h"
#include "core/graph/graph.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/integration_input.h"
#include "core/pipeline/modality_selection.h"
#include "core/pipeline/pipeline_internal.h"
#include "core/pipeline/trained_model_internal.h"
#include "core/runtime/runtime.h"
#include "core/runtime/threads.h"
#include "core/util/build_info.h"
#include "core/util/status_macros.h"

#ifndef CANDIES_VERSION
#define CANDIES_VERSION "dev"
#endif

namespace candies {

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What every stage of one job shares: its settings, device, progress and
// cancel token, and the result and uns["candies"] it fills in.
struct JobRun {
  JobRun(const PipelineOptions& o, torch::Device d, const ProgressSink& p, const CancelToken* c)
      : options(o), device(d), progress(p), cancel(c) {
    cluster = o.cluster;
    cluster.n_clusters = o.n_clusters;
    cluster.seed = o.seed;
  }
  const PipelineOptions& options;
  const torch::Device device;
  const ProgressSink& progress;
  const CancelToken* cancel;
  ClusterOptions cluster;  // the job's clustering: the options' method, n_clusters and seed
  PipelineResult result;
  UnsValue uns = UnsValue::Map();

  // Records the stage's seconds and reports them; true when the job was cancelled.
  bool StageDone(const std::string& stage, Clock::time_point t0) {
    const double s = Since(t0);
    result.stage_seconds.emplace_back(stage, s);
    ProgressEvent ev{stage, 0, 0, std::nan(""), 0, absl::StrCat("done in ", s, " s")};
    return ReportAndCheckCancel(progress, cancel, ev);
  }
};

// The model to apply (in memory, or from load_model_dir), or null to train;
// with a model, *low is the modality it denoises (1 or 2), checked against
// the inputs.
absl::StatusOr<std::shared_ptr<const TrainedModel>> ResolveModel(const PipelineOptions& options,
                                                                 const ModalityInput& mod1,
                                                                 const ModalityInput& mod2,
                                                                 bool denoise, int* low) {
  std::shared_ptr<const TrainedModel> model = options.pretrained;
  if (model == nullptr && !options.load_model_dir.empty()) {
    CANDIES_ASSIGN_OR_RETURN(model, LoadTrainedModel(options.load_model_dir, options.device));
  }
  if (model == nullptr) return model;
  if (!denoise)
    return absl::InvalidArgumentError("model: a trained model is applied by kind full or denoise only");
  *low = model->low_quality == "mod1" ? 1 : 2;
  const ModalityInput& lm = *low == 1 ? mod1 : mod2;
  const ModalityInput& hm = *low == 1 ? mod2 : mod1;
  if (lm.kind != model->low_kind || hm.kind != model->high_kind)
    return absl::InvalidArgumentError(absl::StrCat(
        "model: trained with ", model->low_quality, " = ", ModalityKindName(model->low_kind),
        " (low quality) and the other modality ", ModalityKindName(model->high_kind),
        "; got mod1 = ", ModalityKindName(mod1.kind), ", mod2 = ", ModalityKindName(mod2.kind)));
  if (options.low_quality != LowQuality::kAuto && (options.low_quality == LowQuality::kMod1) != (*low == 1))
    return absl::InvalidArgumentError(absl::StrCat("low_quality: the trained model denoises ",
                                                   model->low_quality));
  return model;
}

// Both modalities after preprocessing and their graph auto-encoders.
struct Encoded {
  std::optional<PreprocessedModality> p1, p2;  // with a model: the high-quality one only
  KnnResult spatial_knn;                       // the GAE's spatial graph (k = gae spatial_k)
  torch::Tensor adj_gae;
  std::shared_ptr<GaeModel> gae1, gae2;        // trained here; null when a model is applied
  const PreprocessedModality& low(int l) const { return l == 1 ? *p1 : *p2; }
  const PreprocessedModality& high(int l) const { return l == 1 ? *p2 : *p1; }
};

// Preprocessing (stage "preprocess"). With a model the high-quality modality
// uses the model's features and loadings, and the low-quality one is not needed.
absl::StatusOr<Encoded> Preprocess(JobRun& run, const AnnData& a1, const AnnData& a2,
                                   const ModalityInput& mod1, const ModalityInput& mod2,
                                   const TrainedModel* model, int low) {
  const PipelineOptions& options = run.options;
  const auto t0 = Clock::now();
  auto preprocess = [&](const AnnData& a, const ModalityInput& m,
                        const char* role) -> absl::StatusOr<PreprocessedModality> {
    PreprocessOptions popts = options.preprocess;
    popts.seed = options.seed;
    if (model != nullptr) {
      popts.fixed_features = model->high_features;
      popts.target_sum = model->target_sum;
      popts.scale_max = model->scale_max;
    }
    auto p = PreprocessModality(a, m.kind, popts);
    if (!p.ok())
      return absl::Status(p.status().code(), absl::StrCat(role, " (", m.name, "): ", p.status().message()));
    if (model != nullptr) p->features = torch::mm(p->expression, model->high_loadings);
    return p;
  };
  Encoded e;
  if (model == nullptr || low == 2) {
    CANDIES_ASSIGN_OR_RETURN(e.p1, preprocess(a1, mod1, "mod1"));
  }
  if (model == nullptr || low == 1) {
    CANDIES_ASSIGN_OR_RETURN(e.p2, preprocess(a2, mod2, "mod2"));
  }
  const int64_t n = a1.n_obs();
  const int64_t gae_k = model != nullptr ? model->spatial_k : options.gae.spatial_k;
  CANDIES_ASSIGN_OR_RETURN(e.spatial_knn, SpatialKnn(run.result.spatial, n, 2, gae_k));
  e.adj_gae = NormalizedAdjacency(e.spatial_knn, n, run.device);
  if (run.StageDone("preprocess", t0)) return absl::CancelledError("cancelled after preprocess");
  return e;
}

// Graph auto-encoders (stages "gae_mod1", "gae_mod2"): result.emb_mod1/2.
// With a model: the high-quality modality through the model's encoder only.
absl::Status Encode(JobRun& run, const TrainedModel* model, int low, Encoded& e) {
  const PipelineOptions& options = run.options;
  PipelineResult& result = run.result;
  if (model != nullptr) {
    const auto t0 = Clock::now();
    CANDIES_ASSIGN_OR_RETURN(torch::Tensor high_emb,
                             GaeEncode(*model->high_gae, e.high(low).features, e.adj_gae, run.device));
    (low == 1 ? result.emb_mod2 : result.emb_mod1) = high_emb;
    if (run.StageDone(low == 1 ? "gae_mod2" : "gae_mod1", t0))
      return absl::CancelledError("cancelled after the graph auto-encoder");
    return absl::OkStatus();
  }
  auto train = [&](const PreprocessedModality& p, const std::string& stage,
                   std::shared_ptr<GaeModel>* kept) -> absl::StatusOr<torch::Tensor> {
    const auto t = Clock::now();
    const bool rna = p.kind == ModalityKind::kRna;
    CANDIES_ASSIGN_OR_RETURN(
        GaeResult g, TrainGae(p.features, rna ? p.counts : torch::Tensor(), e.adj_gae,
                              rna ? options.gae.rna_latent : options.gae.latent, options.gae,
                              run.device, stage, run.progress, run.cancel));
    // Cancellation is checked inside TrainGae; the next stage checks again.
    run.StageDone(stage, t);
    *kept = g.model;
    return g.embedding;
  };
  CANDIES_ASSIGN_OR_RETURN(result.emb_mod1, train(*e.p1, "gae_mod1", &e.gae1));
  CANDIES_ASSIGN_OR_RETURN(result.emb_mod2, train(*e.p2, "gae_mod2", &e.gae2));
  return absl::OkStatus();
}

// Which modality is low quality (stage "select"): the model's, the options',
// or SelectLowQuality's on the two GAE embeddings (uns["selection"]).
absl::StatusOr<int> SelectLow(JobRun& run, const TrainedModel* model, int model_low,
                              const std::vector<int32_t>& truth, const KnnResult& spatial_knn) {
  const PipelineOptions& options = run.options;
  PipelineResult& result = run.result;
  const auto t0 = Clock::now();
  int low = model_low;
  if (model != nullptr) {
    // Decided by the model.
  } else if (options.low_quality == LowQuality::kMod1) {
    low = 1;
  } else if (options.low_quality == LowQuality::kMod2) {
    low = 2;
  } else {
    CANDIES_ASSIGN_OR_RETURN(
        ModalityScores sc,
        SelectLowQuality(result.emb_mod1, result.emb_mod2, run.cluster, options.selection_method, truth,
                         spatial_knn.neighbors, spatial_knn.k));
    low = sc.low;
    result.modality_clusters = {std::move(sc.labels1), std::move(sc.labels2)};
    UnsValue sel = UnsValue::Map();
    sel.Set("score_mod1", UnsValue::Float(sc.score1));
    sel.Set("score_mod2", UnsValue::Float(sc.score2));
    sel.Set("supervised", UnsValue::Bool(sc.supervised));
    run.uns.Set("selection", sel);
  }
  result.low_quality = low == 1 ? "mod1" : "mod2";
  if (run.StageDone("select", t0)) return absl::CancelledError("cancelled after selection");
  return low;
}

// Everything a new section of the same panel needs (trained_model.h).
std::shared_ptr<TrainedModel> AssembleTrainedModel(const JobRun& run, const Encoded& e, int low,
                                                   std::shared_ptr<TrainedDenoiser> denoiser) {
  const PreprocessedModality& pl = e.low(low);
  const PreprocessedModality& ph = e.high(low);
  auto m = std::make_shared<TrainedModel>();
  m->low_quality = run.result.low_quality;
  m->low_kind = pl.kind;
  m->high_kind = ph.kind;
  m->target_sum = run.options.preprocess.target_sum;
  m->scale_max = run.options.preprocess.scale_max;
  m->spatial_k = run.options.gae.spatial_k;
  m->high_features = ph.feature_names;
  m->high_loadings = PcaLoadings(ph.expression, ph.features);
  m->high_gae = low == 1 ? e.gae2 : e.gae1;
  m->denoiser = std::move(denoiser);
  m->low_gae = low == 1 ? e.gae1 : e.gae2;
  m->low_loadings = PcaLoadings(pl.expression, pl.features);
  m->low_features = pl.feature_names;
  m->device = DeviceName(run.device);
  return m;
}

// uns["candies"]["denoise"]'s description of the denoiser that ran.
void DescribeDenoiser(const DiffusionOptions& used, bool pretrained, UnsValue& du) {
  du.Set("pretrained", UnsValue::Bool(pretrained));
  du.Set("schedule", UnsValue::String("cosine"));
  du.Set("timesteps", UnsValue::Int(used.timesteps));
  du.Set("sampler", UnsValue::String(DiffusionSamplerName(used.sampler)));
  du.Set("sample_steps", UnsValue::Int(used.sampler == DiffusionSampler::kDdpm
                                           ? used.timesteps
                                           : (used.sample_steps > 0 ? used.sample_steps : 50)));
  du.Set("folds", UnsValue::Int(pretrained ? 0 : used.folds));
  du.Set("hidden", UnsValue::Int(used.hidden));
  du.Set("depth", UnsValue::Int(used.depth));
  du.Set("heads", UnsValue::Int(used.heads));
  du.Set("temperature", UnsValue::Float(used.temperature));
}

// The low-quality modality's denoised matrix: the model's decoder applied to
// the denoised embedding, with the input values of the same features in
// layers["raw"] (keep_raw_in_denoised) for before/after comparisons.
absl::StatusOr<std::shared_ptr<AnnData>> DenoisedExpression(const JobRun& run, const TrainedModel& m,
                                                            const AnnData& low_input) {
  const PipelineResult& result = run.result;
  const int64_t n = static_cast<int64_t>(result.obs_names.size());
  CANDIES_ASSIGN_OR_RETURN(torch::Tensor expr,
                           DecodeExpression(*m.low_gae, m.low_loadings, result.denoised, run.device));
  auto dx = std::make_shared<AnnData>();
  dx->obs.index = result.obs_names;
  dx->var.index = m.low_features;
  dx->X = TensorToMatrix(expr.to(torch::kFloat32).contiguous());
  dx->obsm["spatial"] = Matrix::Dense(n, 2, result.spatial);
  if (!run.options.keep_raw_in_denoised) return dx;
  std::unordered_map<std::string, int64_t> col;
  for (int64_t c = 0; c < low_input.X.n_cols && c < static_cast<int64_t>(low_input.var.index.size()); ++c)
    col.emplace(low_input.var.index[c], c);
  std::vector<int64_t> cols;
  for (const auto& f : m.low_features) {
    auto it = col.find(f);
    if (it == col.end()) return dx;  // a feature the input lacks: no raw layer
    cols.push_back(it->second);
  }
  std::vector<int64_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = i;
  dx->layers["raw"] = Subset(low_input.X, rows, cols);
  return dx;
}

// Denoising (stage "denoise", kinds full and denoise): result.denoised, the
// denoised matrix and the trained model; the low-quality integration input
// (*low_in) becomes the denoised embedding unless the guard keeps it.
absl::Status Denoise(JobRun& run, const TrainedModel* model, int low, const Encoded& e,
                     const AnnData& low_input, LazyLayoutGraph& layout, torch::Tensor* low_in,
                     const torch::Tensor& high_emb) {
  const PipelineOptions& options = run.options;
  PipelineResult& result = run.result;
  const auto t0 = Clock::now();
  UnsValue du = UnsValue::Map();
  std::shared_ptr<TrainedModel> trained;
  if (model != nullptr) {
    CANDIES_ASSIGN_OR_RETURN(result.denoised,
                             ApplyDenoiser(*model->denoiser, high_emb, run.device, run.progress, run.cancel));
  } else {
    DiffusionOptions dopts = options.diffusion;
    dopts.seed = options.seed;
    CANDIES_ASSIGN_OR_RETURN(DenoiseResult dr, DenoiseKFold(*low_in, high_emb, dopts, run.device,
                                                            run.progress, run.cancel));
    result.denoised = dr.denoised;
    UnsValue losses = UnsValue::Map();
    for (size_t f = 0; f < dr.fold_losses.size(); ++f)
      losses.Set(absl::StrCat("fold", f + 1), UnsValue::FloatArray(dr.fold_losses[f]));
    du.Set("losses", losses);
    du.Set("train_seconds", UnsValue::Float(dr.train_seconds));
    du.Set("sample_seconds", UnsValue::Float(dr.sample_seconds));
    trained = AssembleTrainedModel(run, e, low, dr.model);
  }
  DescribeDenoiser(model != nullptr ? DenoiserOptions(*model->denoiser) : options.diffusion,
                   model != nullptr, du);
  const TrainedModel& m = model != nullptr ? *model : *trained;
  CANDIES_ASSIGN_OR_RETURN(result.denoised_expression, DenoisedExpression(run, m, low_input));
  if (trained != nullptr) {
    if (!options.save_model_dir.empty())
      CANDIES_RETURN_IF_ERROR(SaveTrainedModel(*trained, options.save_model_dir));
    if (options.keep_trained_model) result.trained_model = trained;
  }
  // With a model applied the low-quality modality was never encoded (*low_in
  // is undefined): the guard keeps the denoised embedding.
  CANDIES_ASSIGN_OR_RETURN(LowInputChoice lc, ChooseLowInput(*low_in, result.denoised, layout, options));
  du.Set("integration_input", std::move(lc.uns));
  run.uns.Set("denoise", du);
  if (run.StageDone("denoise", t0)) return absl::CancelledError("cancelled after denoising");
  if (lc.use_denoised) *low_in = result.denoised;
  return absl::OkStatus();
}

// Integration (stage "integrate") and its clustering (stage "cluster"):
// result.joint and result.clusters.
absl::Status Integrate(JobRun& run, const PreprocessedModality& high, int low, torch::Tensor in1,
                       torch::Tensor in2, LazyLayoutGraph& layout) {
  const PipelineOptions& options = run.options;
  PipelineResult& result = run.result;
  const int64_t n = static_cast<int64_t>(result.obs_names.size());
  auto t0 = Clock::now();
  {
    // The high-quality modality is preprocessed in every path (with a
    // trained model too: the model's features and loadings).
    CANDIES_ASSIGN_OR_RETURN(HighInputChoice hc, ChooseHighInput(high.features, layout, options, run.device));
    if (hc.features.defined()) (low == 1 ? in2 : in1) = hc.features;
    run.uns.Set("integration_input", hc.uns);
  }
  // Feature graphs on each modality's input, spatial graph shared.
  IntegrationGraphs graphs;
  CANDIES_ASSIGN_OR_RETURN(KnnResult sk, SpatialKnn(result.spatial, n, 2, options.integration.spatial_k));
  graphs.spatial1 = NormalizedAdjacency(sk, n, run.device);
  graphs.spatial2 = graphs.spatial1;
  CANDIES_ASSIGN_OR_RETURN(KnnResult f1, FeatureKnn(in1, options.integration.feature_k));
  CANDIES_ASSIGN_OR_RETURN(KnnResult f2, FeatureKnn(in2, options.integration.feature_k));
  graphs.feature1 = NormalizedAdjacency(f1, n, run.device);
  graphs.feature2 = NormalizedAdjacency(f2, n, run.device);
  // Reseed: the integration must not depend on how much of the global
  // generator earlier stages used (saving a model constructs modules, and
  // an applied model skips training), so that --save-model, a daemon run
  // and a local run give the same result for the same seed.
  SeedEverything(options.seed ^ kIntegrationSeedSalt);
  CANDIES_ASSIGN_OR_RETURN(IntegrationResult ir, TrainIntegration(in1, in2, graphs, options.integration,
                                                                  run.device, run.progress, run.cancel));
  result.joint = ir.joint;
  if (options.joint_smoothing_hops > 0 || options.joint_smoothing_auto) {
    CANDIES_ASSIGN_OR_RETURN(JointSmoothing js,
                             SmoothJoint(result.joint, layout, options, run.device, &run.cluster));
    result.joint = std::move(js.joint);
    result.clusters = std::move(js.labels);  // empty unless the agreement rule clustered
    run.uns.Set("layout", std::move(js.uns));
  }
  if (run.StageDone("integrate", t0)) return absl::CancelledError("cancelled after integration");
  t0 = Clock::now();
  if (result.clusters.empty()) {
    CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(result.joint, run.cluster));
    result.clusters = c.labels;
  }
  run.StageDone("cluster", t0);
  return absl::OkStatus();
}

// Kind cluster: re-clusters mod1's existing obsm["X_candies"].
absl::Status ClusterExisting(JobRun& run, const AnnData& a1) {
  auto it = a1.obsm.find("X_candies");
  if (it == a1.obsm.end())
    return absl::InvalidArgumentError(
        "mod1: obsm[\"X_candies\"] is missing (kind cluster re-clusters an existing embedding)");
  const auto t0 = Clock::now();
  run.result.joint = MatrixToTensor(it->second);
  CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(run.result.joint, run.cluster));
  run.result.clusters = c.labels;
  run.StageDone("cluster", t0);
  return absl::OkStatus();
}

// Kinds full, integrate and denoise: every stage from preprocessing to the clusters.
absl::Status RunStages(JobRun& run, const ModalityInput& mod1, const ModalityInput& mod2,
                       const std::vector<int64_t>& order, const std::vector<int32_t>& truth) {
  const PipelineOptions& options = run.options;
  PipelineResult& result = run.result;
  const AnnData& a1 = *mod1.adata;
  const AnnData a2 = ReorderRows(*mod2.adata, order);
  const bool denoise = options.kind == JobKind::kFull || options.kind == JobKind::kDenoise;
  // A trained model (in memory, or from load_model_dir) fixes which modality is
  // low quality, the high-quality recipe and encoder, and the denoiser.
  int low = 0;
  CANDIES_ASSIGN_OR_RETURN(std::shared_ptr<const TrainedModel> model,
                           ResolveModel(options, mod1, mod2, denoise, &low));
  CANDIES_ASSIGN_OR_RETURN(Encoded e, Preprocess(run, a1, a2, mod1, mod2, model.get(), low));
  CANDIES_RETURN_IF_ERROR(Encode(run, model.get(), low, e));
  CANDIES_ASSIGN_OR_RETURN(low, SelectLow(run, model.get(), low, truth, e.spatial_knn));
  // The layout's own neighbourhood, built once when a rule first reads it.
  LazyLayoutGraph layout(result.spatial, a1.n_obs());
  torch::Tensor in1 = result.emb_mod1, in2 = result.emb_mod2;
  if (denoise) {
    // The low-quality embedding is replaced by the one the conditional
    // diffusion model generates from the high-quality one (unless the guard
    // keeps it).
    CANDIES_RETURN_IF_ERROR(Denoise(run, model.get(), low, e, low == 1 ? a1 : a2, layout,
                                    low == 1 ? &in1 : &in2, low == 1 ? in2 : in1));
  }
  run.uns.Set("denoised", UnsValue::Bool(result.denoised.defined()));
  if (options.kind != JobKind::kDenoise) return Integrate(run, e.high(low), low, in1, in2, layout);
  // Kind denoise stops after the denoiser: clusters of the denoised embedding.
  const auto t0 = Clock::now();
  CANDIES_ASSIGN_OR_RETURN(Clustering c, Cluster(result.denoised, run.cluster));
  result.clusters = c.labels;
  result.joint = result.denoised;
  run.StageDone("cluster", t0);
  return absl::OkStatus();
}

// Marker features (stage "markers") of the RNA modality (else mod1); a failure
// (a domain of one spot) is a warning, not a failed job.
void RankMarkers(JobRun& run, const ModalityInput& mod1, const ModalityInput& mod2,
                 const std::vector<int64_t>& order) {
  PipelineResult& result = run.result;
  const auto t0 = Clock::now();
  const bool use2 = mod1.kind != ModalityKind::kRna && mod2.kind == ModalityKind::kRna;
  absl::StatusOr<UnsValue> markers = use2 ? DomainMarkers(*mod2.adata, order, result.clusters, "mod2")
                                          : DomainMarkers(*mod1.adata, {}, result.clusters, "mod1");
  if (markers.ok()) {
    result.markers = std::move(*markers);
  } else {
    result.warnings.push_back(absl::StrCat("marker features: ", markers.status().message()));
  }
  run.StageDone("markers", t0);
}

// uns["candies"]: what ran, where, with which settings, and how long.
void DescribeJob(JobRun& run, const ThreadSettings& threads) {
  UnsValue& uns = run.uns;
  uns.Set("version", UnsValue::String(CANDIES_VERSION));
  uns.Set("seed", UnsValue::Int(static_cast<int64_t>(run.options.seed)));
  uns.Set("device", UnsValue::String(DeviceName(run.device)));
  uns.Set("torch", UnsValue::String(GetBuildInfo().torch));
  uns.Set("cuda", UnsValue::String(GetBuildInfo().cuda));  // "" for a CPU-only LibTorch
  uns.Set("params", PipelineParams(run.options));
  uns.Set("threads", UnsValue::String(DescribeThreads(threads)));
}

void FinishUns(JobRun& run) {
  PipelineResult& result = run.result;
  UnsValue& uns = run.uns;
  if (!result.warnings.empty()) uns.Set("warnings", UnsValue::StringArray(result.warnings));
  uns.Set("low_quality", UnsValue::String(result.low_quality));
  UnsValue secs = UnsValue::Map();
  for (const auto& [k, v] : result.stage_seconds) secs.Set(k, UnsValue::Float(v));
  uns.Set("seconds", secs);
  UnsValue mets = UnsValue::Map();
  for (const auto& [k, v] : result.metrics) mets.Set(k, UnsValue::Float(v));
  uns.Set("metrics", mets);
}

absl::StatusOr<PipelineResult> RunPipelineImpl(const ModalityInput& mod1, const ModalityInput& mod2,
                                               const PipelineOptions& options,
                                               const ProgressSink& progress,
                                               const CancelToken* cancel) {
  CANDIES_RETURN_IF_ERROR(CheckModality(mod1, "mod1"));
  CANDIES_RETURN_IF_ERROR(CheckModality(mod2, "mod2"));
  const AnnData& a1 = *mod1.adata;
  CANDIES_RETURN_IF_ERROR(ValidatePipelineOptions(options, a1.n_obs()));
  CANDIES_ASSIGN_OR_RETURN(torch::Device device, ResolveDevice(options.device));
  const ThreadSettings threads = ConfigureThreads(options.threads);
  SeedEverything(options.seed);
  const auto t_all = Clock::now();

  JobRun run(options, device, progress, cancel);
  run.result.obs_names = a1.obs.index;
  run.result.spatial = Coords(a1);
  DescribeJob(run, threads);

  // Align mod2 to mod1's spots.
  CANDIES_ASSIGN_OR_RETURN(std::vector<int64_t> order, MatchSpots(a1, *mod2.adata));
  std::vector<int32_t> truth;
  if (!options.labels_key.empty()) {
    CANDIES_ASSIGN_OR_RETURN(truth, TruthLabels(a1, mod2.adata.get(), order, options.labels_key,
                                                &run.result.truth_labels));
  }
  if (options.kind == JobKind::kCluster) {
    CANDIES_RETURN_IF_ERROR(ClusterExisting(run, a1));
  } else {
    CANDIES_RETURN_IF_ERROR(RunStages(run, mod1, mod2, order, truth));
  }
  if (!truth.empty()) run.result.metrics = metrics::SupervisedReport(truth, run.result.clusters);
  if (options.rank_markers && !run.result.clusters.empty()) RankMarkers(run, mod1, mod2, order);
  run.result.stage_seconds.emplace_back("total", Since(t_all));
  FinishUns(run);
  run.result.uns = std::move(run.uns);
  return std::move(run.result);
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
