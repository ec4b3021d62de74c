// integration_lab: the integration and the clustering alone on cached
// pipeline pieces, for tuning (docs/SCIENCE.md). The first run of a seed runs
// the whole fast pipeline (kind full) once and caches, in --cache, what the
// integration consumes: the low-quality modality's denoised and GAE
// embeddings, the coordinates, the truth and the pipeline's own ARI (the
// high-quality features are recomputed, seeded as the pipeline seeds them).
// Later runs train the integration only (about 10 s a seed instead of 80), so a variant can be
// judged on many seeds. Defaults are the fast preset's; with them a seed
// reproduces the ARI the pipeline had when the seed was cached (printed beside
// it as a check; a cache made under other defaults says so by differing).
//
//   integration_lab [--seeds 5] [--seed0 0] [--cache DIR] [--no-denoise]
//                   [--epochs E] [--lr LR] [--tau T] [--out-dim D] [--feature-k K]
//                   [--spatial-k K] [--cluster mclust|kmeans|leiden] [--n-pcs P]
//                   [--high-comps C] (PCs of the high-quality modality)
//                   [--reps R]   (R integration seeds per section: the spread)
//                   [--ensemble M] (IntegrationOptions::ensemble)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench/quality/cluster_ari.h"
#include "core/cluster/cluster.h"
#include "core/graph/graph.h"
#include "core/metrics/metrics.h"
#include "core/models/integration.h"
#include "core/pipeline/pipeline.h"
#include "core/preprocess/preprocess.h"
#include "core/runtime/runtime.h"
#include "core/sim/simulator.h"

namespace candies {
namespace {

struct Cached {
  torch::Tensor denoised, low_gae, high_features, coords, truth;
  double pipeline_ari = NAN;
  int64_t low = 1;  // 1: mod1 (rna) is low quality
};

// The high-quality modality's features as the pipeline computes them (its
// preprocessing is seeded with the job's seed), with `n_comps` components.
absl::StatusOr<torch::Tensor> HighFeatures(const SimulatedData& sim, int64_t low, int seed,
                                           int64_t n_comps) {
  PreprocessOptions popts = PipelineOptions::FromPreset(Preset::kFast).preprocess;
  popts.seed = static_cast<uint64_t>(seed);
  if (n_comps > 0) popts.n_comps = n_comps;
  auto ph = PreprocessModality(low == 1 ? sim.protein : sim.rna,
                               low == 1 ? ModalityKind::kProtein : ModalityKind::kRna, popts);
  if (!ph.ok()) return ph.status();
  return ph->features;
}

absl::StatusOr<Cached> LoadOrRun(const std::string& dir, int seed, int64_t high_comps) {
  const std::string f = dir + "/seed" + std::to_string(seed) + ".pt";
  SimulatorOptions so;
  so.seed = seed;
  auto sim = Simulate(so);
  if (!sim.ok()) return sim.status();
  Cached c;
  if (std::filesystem::exists(f)) {
    std::vector<torch::Tensor> t;
    torch::load(t, f);
    if (t.size() == 7) t.erase(t.begin() + 2);  // an early cache also held the high features
    c = {t[0], t[1], torch::Tensor(), t[2], t[3], t[4].item<double>(), t[5].item<int64_t>()};
  } else {
    PipelineOptions o = PipelineOptions::FromPreset(Preset::kFast);
    o.kind = JobKind::kFull;
    o.n_clusters = 5;
    o.device = "cpu";
    o.seed = seed;
    auto rna = std::make_shared<AnnData>(sim->rna);
    auto prot = std::make_shared<AnnData>(sim->protein);
    auto r = RunPipeline({"rna", ModalityKind::kRna, rna}, {"prot", ModalityKind::kProtein, prot}, o);
    if (!r.ok()) return r.status();
    c.low = r->low_quality == "mod1" ? 1 : 2;
    c.denoised = r->denoised;
    c.low_gae = c.low == 1 ? r->emb_mod1 : r->emb_mod2;
    c.coords = torch::tensor(r->spatial).view({-1, 2});
    c.truth = torch::tensor(std::vector<int64_t>(sim->domain.begin(), sim->domain.end()));
    c.pipeline_ari = metrics::AdjustedRandIndex(sim->domain, r->clusters);
    torch::save(std::vector<torch::Tensor>{c.denoised, c.low_gae, c.coords, c.truth,
                                           torch::tensor(c.pipeline_ari), torch::tensor(c.low)},
                f);
  }
  auto hf = HighFeatures(*sim, c.low, seed, high_comps);
  if (!hf.ok()) return hf.status();
  c.high_features = *hf;
  return c;
}

// The section as a grid: '.' for a spot in its cluster's majority domain,
// else the digit of its true domain (the simulator's grid coordinates).
void PrintErrorMap(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred,
                   const std::vector<float>& coords) {
  std::map<int32_t, int32_t> majority = MajorityDomains(truth, pred);
  int w = 0, h = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    w = std::max(w, static_cast<int>(coords[2 * i]) + 1);
    h = std::max(h, static_cast<int>(coords[2 * i + 1]) + 1);
  }
  std::vector<std::string> rows(h, std::string(w, ' '));
  for (size_t i = 0; i < truth.size(); ++i) {
    const bool ok = majority[pred[i]] == truth[i];
    rows[static_cast<int>(coords[2 * i + 1])][static_cast<int>(coords[2 * i])] =
        ok ? (truth[i] == 0 ? '.' : static_cast<char>('a' + truth[i])) : static_cast<char>('0' + truth[i]);
  }
  int into_background = 0, errors = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (majority[pred[i]] == truth[i]) continue;
    ++errors;
    into_background += majority[pred[i]] == 0;
  }
  std::printf("\n  %d errors, %d of them placed in the background (domain 0)\n", errors, into_background);
  for (const auto& r : rows) std::printf("  %s\n", r.c_str());
}

int Main(int argc, char** argv) {
  int seeds = 5, seed0 = 0, reps = 1;
  std::string cache = "/tmp/integration_lab";
  bool no_denoise = false;
  int64_t high_comps = 0;  // 0: the preset's n_comps
  bool scale_inputs = false, error_map = false;
  PipelineOptions base = PipelineOptions::FromPreset(Preset::kFast);
  IntegrationOptions io = base.integration;
  ClusterOptions co = base.cluster;
  co.n_clusters = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--seeds") seeds = std::atoi(next().c_str());
    else if (a == "--seed0") seed0 = std::atoi(next().c_str());
    else if (a == "--cache") cache = next();
    else if (a == "--reps") reps = std::atoi(next().c_str());
    else if (a == "--ensemble") io.ensemble = std::atoll(next().c_str());
    else if (a == "--no-denoise") no_denoise = true;
    else if (a == "--epochs") io.epochs = std::atoll(next().c_str());
    else if (a == "--lr") io.lr = std::atof(next().c_str());
    else if (a == "--tau") io.temperature = std::atof(next().c_str());
    else if (a == "--out-dim") io.out_dim = std::atoll(next().c_str());
    else if (a == "--feature-k") io.feature_k = std::atoll(next().c_str());
    else if (a == "--spatial-k") io.spatial_k = std::atoll(next().c_str());
    else if (a == "--patience") io.patience = std::atoll(next().c_str());
    else if (a == "--scale-inputs") scale_inputs = true;
    else if (a == "--error-map") error_map = true;
    else if (a == "--high-comps") high_comps = std::atoll(next().c_str());
    else if (a == "--n-pcs") co.n_pcs = std::atoll(next().c_str());
    else if (a == "--cluster") {
      auto m = ParseClusterMethod(next());
      if (!m.ok()) { std::fprintf(stderr, "%s\n", std::string(m.status().message()).c_str()); return 2; }
      co.method = *m;
    } else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  std::filesystem::create_directories(cache);
  std::printf("integration: ensemble %ld, epochs %ld lr %g tau %g out %ld feature_k %ld spatial_k %ld; %s on %s%s\n",
              static_cast<long>(io.ensemble), static_cast<long>(io.epochs), io.lr, io.temperature, static_cast<long>(io.out_dim),
              static_cast<long>(io.feature_k), static_cast<long>(io.spatial_k),
              ClusterMethodName(co.method), no_denoise ? "GAE embedding" : "denoised embedding",
              co.method == ClusterMethod::kMclust ? (" (" + std::to_string(co.n_pcs) + " PCs)").c_str() : "");
  double sum = 0;
  int count = 0;
  for (int seed = seed0; seed < seed0 + seeds; ++seed) {
    auto c = LoadOrRun(cache, seed, high_comps);
    if (!c.ok()) { std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str()); return 1; }
    const int64_t n = c->truth.size(0);
    std::vector<int32_t> truth(n);
    for (int64_t i = 0; i < n; ++i) truth[i] = static_cast<int32_t>(c->truth[i].item<int64_t>());
    std::vector<float> coords(c->coords.data_ptr<float>(), c->coords.data_ptr<float>() + 2 * n);
    torch::Tensor low_in = no_denoise ? c->low_gae : c->denoised;
    torch::Tensor in1 = c->low == 1 ? low_in : c->high_features;
    torch::Tensor in2 = c->low == 1 ? c->high_features : low_in;
    if (scale_inputs) {
      // Each input to unit overall standard deviation, so that neither
      // modality's reconstruction error dominates the loss by its scale alone.
      in1 = in1 / in1.std();
      in2 = in2 / in2.std();
    }
    IntegrationGraphs g;
    auto sk = SpatialKnn(coords, n, 2, io.spatial_k);
    auto f1 = FeatureKnn(in1, io.feature_k), f2 = FeatureKnn(in2, io.feature_k);
    if (!sk.ok() || !f1.ok() || !f2.ok()) return 1;
    g.spatial1 = g.spatial2 = NormalizedAdjacency(*sk, n, torch::kCPU);
    g.feature1 = NormalizedAdjacency(*f1, n, torch::kCPU);
    g.feature2 = NormalizedAdjacency(*f2, n, torch::kCPU);
    std::printf("seed %3d (pipeline %.4f):", seed, c->pipeline_ari);
    for (int rep = 0; rep < reps; ++rep) {
      // rep 0 is the pipeline's own seed; the others show the spread.
      SeedEverything((static_cast<uint64_t>(seed) ^ kIntegrationSeedSalt) + static_cast<uint64_t>(rep));
      const auto t0 = std::chrono::steady_clock::now();
      auto ir = TrainIntegration(in1, in2, g, io, torch::kCPU);
      if (!ir.ok()) { std::fprintf(stderr, "%s\n", std::string(ir.status().message()).c_str()); return 1; }
      co.seed = static_cast<uint64_t>(seed);
      auto cl = Cluster(ir->joint, co);
      if (!cl.ok()) { std::fprintf(stderr, "%s\n", std::string(cl.status().message()).c_str()); return 1; }
      const double ari = metrics::AdjustedRandIndex(truth, cl->labels);
      sum += ari;
      ++count;
      std::printf(" %.4f (epochs", ari);
      for (const auto& l : ir->losses) std::printf(" %zu", l.size());
      std::printf(", spatial weight %.2f, %.1f s)", ir->attention.select(1, 0).mean().item<double>(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (error_map && rep == 0) PrintErrorMap(truth, cl->labels, coords);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  std::printf("mean %.4f over %d runs\n", sum / count, count);
  return 0;
}

}  // namespace
}  // namespace candies

int main(int argc, char** argv) { return candies::Main(argc, argv); }
