// bench_quality: accuracy of the pipeline on the simulated benchmark
// (ALGORITHM.md section 5), with per-modality and naive baselines, per-stage
// seconds and peak RSS. Prints tables; it is not a timed test.
//
//   bench_quality [--seeds 5] [--seed0 0] [--preset fast|paper] [--rna-noise-sd 3] [--rna-dropout 0.3]
//                 [--grid-sweep] [--n-spots N] [--threads N] [--denoise]
//                 [--temperature T] [--diffusion-epochs E] [--diffusion-patience P] [--sample-steps S]
//                 [--gae-epochs E] [--integration-epochs E] [--integration-ensemble M]
//                 [--feature-k K] [--cluster mclust|kmeans|leiden]
//                 [--high-input auto|features|embedding|smoothed] [--protein-noise-sd SD]
//                 [--device cpu|cuda|auto] [--bf16]   (--bf16: the denoiser's bf16 autocast, CUDA only)
//                 [--grid G]   (spots per simulated tile side, 36; the GPU check's CPU smoke uses 12)
// With --n-spots it also prints the integration's loss curve in brief (to compare two
// builds on one seed) and each stage's process CPU seconds (user + sys).
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench/quality/cluster_ari.h"
#include "bench/quality/naive_baseline.h"
#include "core/cluster/cluster.h"
#include "core/graph/graph.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/pipeline.h"
#include "core/preprocess/preprocess.h"
#include "core/runtime/cuda_memory.h"
#include "core/runtime/runtime.h"
#include "core/runtime/threads.h"
#include "core/sim/simulator.h"

namespace candies {
namespace {

struct Row {
  double raw_rna = 0, raw_prot = 0, gae_rna = 0, gae_prot = 0, naive = 0, integrated = 0;
  double denoised = NAN;  // k-means on X_candies_denoised alone (with --denoise)
  int errors = 0, boundary_errors = 0;  // integrated: spots off their cluster's majority domain
  std::map<std::string, double> seconds;
  std::string low;
  std::vector<double> integrate_losses;  // the integration's progress losses, in report order
  // Process CPU seconds (user + sys, all threads) at each stage's first and
  // last progress event: a stage's CPU time on a loaded machine, where its
  // wall seconds mostly measure the load.
  std::map<std::string, std::pair<double, double>> cpu_at_events;
};

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Spots whose cluster's majority domain is not their own, and how many of
// them touch another domain (4-neighbourhood on the simulator's grid).
void CountErrors(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred,
                 const std::vector<float>& coords, int* errors, int* boundary) {
  std::map<int32_t, int32_t> majority = MajorityDomains(truth, pred);
  std::map<std::pair<int, int>, int32_t> at;
  for (size_t i = 0; i < truth.size(); ++i)
    at[{static_cast<int>(coords[2 * i]), static_cast<int>(coords[2 * i + 1])}] = truth[i];
  *errors = *boundary = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (majority[pred[i]] == truth[i]) continue;
    ++*errors;
    const int x = static_cast<int>(coords[2 * i]), y = static_cast<int>(coords[2 * i + 1]);
    for (auto [dx, dy] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
      auto it = at.find({x + dx, y + dy});
      if (it != at.end() && it->second != truth[i]) { ++*boundary; break; }
    }
  }
}

// The spots a spatial graph convolution cannot place by itself: those whose
// own domain holds less than half of the weight of A^h, the normalised spatial
// operator `adj` applied h times (h = 1..3: the GAE's two GCN layers, then
// the integration's spatial view). These lie on corners and tips of domains;
// only the feature view can rescue them.
void PrintGraphCeiling(const std::vector<int32_t>& truth, const torch::Tensor& adj, int64_t k) {
  const int64_t n = static_cast<int64_t>(truth.size());
  auto onehot =
      torch::one_hot(torch::tensor(std::vector<int64_t>(truth.begin(), truth.end()))).to(torch::kFloat);
  auto p = onehot;
  std::printf("spots with < 50%% own-domain weight after h hops of the k=%ld spatial graph:",
              static_cast<long>(k));
  for (int h = 1; h <= 3; ++h) {
    p = torch::mm(adj, p);
    auto share = (p * onehot).sum(1) / p.sum(1);
    // ARI if every spot took the domain with the most weight (ties: lowest id).
    auto arg = p.argmax(1).to(torch::kInt32).contiguous();
    std::vector<int32_t> label(arg.data_ptr<int32_t>(), arg.data_ptr<int32_t>() + n);
    std::printf("  h=%d: %ld (ARI of the argmax %.3f)", h,
                static_cast<long>((share < 0.5).sum().item<int64_t>()),
                metrics::AdjustedRandIndex(truth, label));
  }
  std::printf("  (of %ld)\n", static_cast<long>(n));
}

absl::StatusOr<Row> RunOne(const SimulatorOptions& so, const PipelineOptions& base, bool baselines,
                           bool baselines_only = false) {
  auto sim = Simulate(so);
  if (!sim.ok()) return sim.status();
  Row row;
  PipelineOptions o = base;
  o.seed = so.seed;
  auto rna = std::make_shared<AnnData>(std::move(sim->rna));
  auto prot = std::make_shared<AnnData>(std::move(sim->protein));
  if (baselines) {
    auto p1 = PreprocessModality(*rna, ModalityKind::kRna, o.preprocess);
    auto p2 = PreprocessModality(*prot, ModalityKind::kProtein, o.preprocess);
    if (!p1.ok()) return p1.status();
    if (!p2.ok()) return p2.status();
    // Raw baselines: PCA (the preprocessed features) + k-means, the classical recipe.
    row.raw_rna = ClusterAri(p1->features, sim->domain, ClusterMethod::kKmeans, so.seed);
    row.raw_prot = ClusterAri(p2->features, sim->domain, ClusterMethod::kKmeans, so.seed);
    // The pipeline's spatial graph (k = gae.spatial_k, 3), shared by the
    // ceiling and the naive baseline.
    const Matrix& s = rna->obsm.at("spatial");
    const std::vector<float> coords(s.values.begin(), s.values.end());
    const int64_t n = rna->n_obs();
    auto knn = SpatialKnn(coords, n, 2, o.gae.spatial_k);
    if (!knn.ok()) return knn.status();
    auto adj = NormalizedAdjacency(*knn, n, torch::kCPU);
    if (so.seed == 0) PrintGraphCeiling(sim->domain, adj, o.gae.spatial_k);  // same geometry every seed
    row.naive = NaiveBaseline(*p1, *p2, adj, sim->domain, so.seed);
  }
  if (baselines_only) return row;
  auto record = [&row](const ProgressEvent& e) {
    if (e.stage == "integrate" && std::isfinite(e.loss)) row.integrate_losses.push_back(e.loss);
    const double cpu = ProcessCpuSeconds();
    auto [it, first] = row.cpu_at_events.try_emplace(e.stage, cpu, cpu);
    if (!first) it->second.second = cpu;
  };
  auto r = RunPipeline({"rna", ModalityKind::kRna, rna}, {"prot", ModalityKind::kProtein, prot}, o,
                       record);
  if (!r.ok()) return r.status();
  row.integrated = metrics::AdjustedRandIndex(sim->domain, r->clusters);
  CountErrors(sim->domain, r->clusters, r->spatial, &row.errors, &row.boundary_errors);
  if (r->denoised.defined())
    row.denoised = ClusterAri(r->denoised, sim->domain, ClusterMethod::kKmeans, so.seed);
  if (baselines) {
    row.gae_rna = ClusterAri(r->emb_mod1, sim->domain, o.cluster.method, so.seed);
    row.gae_prot = ClusterAri(r->emb_mod2, sim->domain, o.cluster.method, so.seed);
  }
  for (const auto& [k, v] : r->stage_seconds) row.seconds[k] = v;
  row.low = r->low_quality;
  return row;
}

double PeakRssMiB() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// The integration's loss curve in brief (events interleave the members epoch
// by epoch): count, the first and last `members` values, and the mean, so two
// builds' runs of the same seed can be compared.
void PrintIntegrateLosses(const std::vector<double>& losses, int64_t members) {
  const size_t m = static_cast<size_t>(std::max<int64_t>(1, members));
  double sum = 0;
  for (double l : losses) sum += l;
  std::printf("integrate losses: %zu events, mean %.7f, first", losses.size(),
              losses.empty() ? NAN : sum / static_cast<double>(losses.size()));
  for (size_t i = 0; i < std::min(m, losses.size()); ++i) std::printf(" %.7f", losses[i]);
  std::printf(", last");
  for (size_t i = losses.size() - std::min(m, losses.size()); i < losses.size(); ++i)
    std::printf(" %.7f", losses[i]);
  std::printf("\n");
}

// Peak RSS, and on a CUDA device the allocator's peak (scripts/gpu-check.sh reads both).
void PrintPeakMemory() {
  std::printf("peak RSS %.0f MiB\n", PeakRssMiB());
  const CudaMemoryStats gpu = GetCudaMemoryStats(0);
  if (gpu.available) std::printf("peak GPU memory %.0f MiB\n", gpu.peak_allocated / 1048576.0);
}

int Main(int argc, char** argv) {
  int seeds = 5, seed0 = 0, threads = 0;
  std::string preset = "fast";
  double sd = 3, dropout = 0.3;
  double prot_sd = SimulatorOptions().protein_noise_sd;
  bool sweep = false, denoise = false, baselines_only = false;
  double rna_fold = SimulatorOptions().rna_marker_fold;
  double prot_fold = SimulatorOptions().protein_marker_fold;
  int64_t n_spots = 0;
  double temperature = -1;
  int64_t diff_epochs = 0, sample_steps = 0, diff_patience = -1;
  int64_t gae_epochs = 0, integration_epochs = 0, feature_k = 0, ensemble = 0;
  std::string cluster_method, high_input = "features";
  std::string device = "cpu";
  bool bf16 = false;
  int64_t grid = SimulatorOptions().grid;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--seeds") seeds = std::atoi(next().c_str());
    else if (a == "--seed0") seed0 = std::atoi(next().c_str());  // the table's first seed
    else if (a == "--preset") preset = next();
    else if (a == "--rna-noise-sd") sd = std::atof(next().c_str());
    else if (a == "--rna-dropout") dropout = std::atof(next().c_str());
    else if (a == "--protein-noise-sd") prot_sd = std::atof(next().c_str());
    else if (a == "--grid-sweep") sweep = true;
    else if (a == "--n-spots") n_spots = std::atoll(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--denoise") denoise = true;
    else if (a == "--baselines-only") baselines_only = true;  // skip the pipeline (calibration)
    else if (a == "--rna-marker-fold") rna_fold = std::atof(next().c_str());
    else if (a == "--protein-marker-fold") prot_fold = std::atof(next().c_str());
    else if (a == "--temperature") temperature = std::atof(next().c_str());  // diffusion sampler
    else if (a == "--diffusion-epochs") diff_epochs = std::atoll(next().c_str());
    else if (a == "--sample-steps") sample_steps = std::atoll(next().c_str());
    else if (a == "--diffusion-patience") diff_patience = std::atoll(next().c_str());  // 0: off
    else if (a == "--gae-epochs") gae_epochs = std::atoll(next().c_str());
    else if (a == "--integration-epochs") integration_epochs = std::atoll(next().c_str());
    else if (a == "--integration-ensemble") ensemble = std::atoll(next().c_str());
    else if (a == "--feature-k") feature_k = std::atoll(next().c_str());  // integration feature graph
    else if (a == "--cluster") cluster_method = next();
    else if (a == "--device") device = next();
    else if (a == "--bf16") bf16 = true;
    else if (a == "--grid") grid = std::atoll(next().c_str());
    else if (a == "--high-input") high_input = next();  // integration input of the clean modality
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  auto p = ParsePreset(preset);
  if (!p.ok()) { std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str()); return 2; }
  PipelineOptions o = PipelineOptions::FromPreset(*p);
  o.kind = denoise ? JobKind::kFull : JobKind::kIntegrate;
  o.n_clusters = 5;
  o.device = device;
  o.diffusion.bf16_autocast = bf16;
  if (temperature >= 0) o.diffusion.temperature = temperature;
  if (diff_epochs > 0) o.diffusion.max_epochs = diff_epochs;
  if (sample_steps > 0) o.diffusion.sample_steps = sample_steps;
  if (diff_patience >= 0) o.diffusion.patience = diff_patience;
  auto hi = ParseHighInput(high_input);
  if (!hi.ok()) {
    std::fprintf(stderr, "--high-input: %s\n", std::string(hi.status().message()).c_str());
    return 2;
  }
  o.high_input = *hi;
  if (gae_epochs > 0) o.gae.epochs = gae_epochs;
  if (integration_epochs > 0) o.integration.epochs = integration_epochs;
  if (feature_k > 0) o.integration.feature_k = feature_k;
  if (ensemble > 0) o.integration.ensemble = ensemble;
  if (!cluster_method.empty()) {
    auto m = ParseClusterMethod(cluster_method);
    if (!m.ok()) { std::fprintf(stderr, "%s\n", std::string(m.status().message()).c_str()); return 2; }
    o.cluster.method = *m;
  }
  o.threads = threads;
  std::printf("device %s, bf16 autocast %s\n", device.c_str(), bf16 ? "on" : "off");
  std::printf("preset %s, kind %s, integration input of the clean modality: %s, integration ensemble %ld, "
              "%s\n",
              preset.c_str(), JobKindName(o.kind), high_input.c_str(), static_cast<long>(o.integration.ensemble),
              candies::DescribeThreads(candies::ConfigureThreads(threads)).c_str());

  if (n_spots > 0) {
    SimulatorOptions so;
    so.rna_noise_sd = sd;
    so.rna_dropout = dropout;
    so.grid = grid;
    const double tile = static_cast<double>(grid * grid);
    so.scale = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(n_spots / tile))));
    std::printf("scaled simulator: scale %lld -> %lld spots\n", static_cast<long long>(so.scale),
                static_cast<long long>(so.scale * so.scale * grid * grid));
    auto r = RunOne(so, o, false);
    if (!r.ok()) { std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str()); return 1; }
    std::printf("integrated ARI %.4f  low %s\n", r->integrated, r->low.c_str());
    PrintIntegrateLosses(r->integrate_losses, o.integration.ensemble);
    for (const auto& [stage, cpu] : r->cpu_at_events)
      std::printf("  %-12s %8.2f CPU s between its first and last progress event\n", stage.c_str(),
                  cpu.second - cpu.first);
    for (const auto& [k, v] : r->seconds) std::printf("  %-12s %8.2f s\n", k.c_str(), v);
    PrintPeakMemory();
    return 0;
  }

  if (sweep) {
    std::printf("mean integrated ARI over %d seeds\nsd\\drop", seeds);
    const std::vector<double> sds{3, 4, 5, 6}, drops{0.2, 0.3, 0.4, 0.5};
    for (double d : drops) std::printf("  %6.1f", d);
    std::printf("\n");
    for (double s : sds) {
      std::printf("%6.0f ", s);
      for (double d : drops) {
        double sum = 0;
        for (int seed = 0; seed < seeds; ++seed) {
          SimulatorOptions so;
          so.rna_noise_sd = s;
          so.rna_dropout = d;
          so.seed = seed;
          auto r = RunOne(so, o, false);
          sum += r.ok() ? r->integrated : NAN;
        }
        std::printf("  %6.3f", sum / seeds);
        std::fflush(stdout);
      }
      std::printf("\n");
    }
    return 0;
  }

  std::printf("RNA sd %.1f dropout %.2f, protein sd %.1f, ARI. raw_*: PCA + k-means; naive: PCA + k-means on "
              "spatially smoothed concatenated PCs; gae_*, integrated: %s\n", sd, dropout, prot_sd,
              ClusterMethodName(o.cluster.method));
  std::printf("%4s %8s %8s %8s %8s %8s %10s %9s %4s %8s %10s\n", "seed", "raw_rna", "raw_prot", "gae_rna",
              "gae_prot", "naive", "integrated", "denoised", "low", "total_s", "errors");
  std::printf("     (integrated errors: spots off their cluster's majority domain / of them on a domain boundary)\n");
  Row mean;
  for (int seed = seed0; seed < seed0 + seeds; ++seed) {
    SimulatorOptions so;
    so.rna_noise_sd = sd;
    so.rna_dropout = dropout;
    so.seed = seed;
    so.grid = grid;
    so.rna_marker_fold = rna_fold;
    so.protein_noise_sd = prot_sd;
    so.protein_marker_fold = prot_fold;
    auto r = RunOne(so, o, true, baselines_only);
    if (!r.ok()) { std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str()); return 1; }
    std::printf("%4d %8.3f %8.3f %8.3f %8.3f %8.3f %10.3f %9.3f %4s %8.2f %6d/%d\n", seed, r->raw_rna,
                r->raw_prot, r->gae_rna, r->gae_prot, r->naive, r->integrated, r->denoised,
                r->low.c_str(), r->seconds["total"], r->errors, r->boundary_errors);
    std::fflush(stdout);
    mean.raw_rna += r->raw_rna / seeds;
    mean.raw_prot += r->raw_prot / seeds;
    mean.gae_rna += r->gae_rna / seeds;
    mean.gae_prot += r->gae_prot / seeds;
    mean.naive += r->naive / seeds;
    mean.integrated += r->integrated / seeds;
    mean.denoised = (seed == seed0 ? 0 : mean.denoised) + r->denoised / seeds;
    for (const auto& [k, v] : r->seconds) mean.seconds[k] += v / seeds;
  }
  std::printf("%4s %8.3f %8.3f %8.3f %8.3f %8.3f %10.3f %9.3f\n", "mean", mean.raw_rna, mean.raw_prot,
              mean.gae_rna, mean.gae_prot, mean.naive, mean.integrated, mean.denoised);
  std::printf("mean seconds per stage:\n");
  for (const auto& [k, v] : mean.seconds) std::printf("  %-12s %8.2f\n", k.c_str(), v);
  PrintPeakMemory();
  return 0;
}

}  // namespace
}  // namespace candies

int main(int argc, char** argv) { return candies::Main(argc, argv); }
