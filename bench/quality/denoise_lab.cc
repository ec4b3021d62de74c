// denoise_lab: the denoiser alone on cached graph auto-encoder embeddings, for
// tuning (docs/DIFFUSION.md). The first run of a seed runs the integration
// pipeline once and caches its embeddings in --cache; later runs train and
// sample the diffusion model only. Prints k-means ARI of the denoised rows.
//
//   denoise_lab [--seeds 5] [--seed0 0] [--cache DIR] [DiT/training flags]
//     default: one model per fold (TrainDenoiser/ApplyDenoiser), every --sample
//              ddim|ddpm:steps:temperature tried on the same models;
//     --kfold:  DenoiseKFold as the pipeline calls it, per-fold diagnostics,
//               the output saved to DIR/den_seed<S>.pt (--analyse: k-means
//               restarts and inertia, mclust); --reuse analyses a saved output.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench/quality/cluster_ari.h"
#include "core/cluster/cluster.h"
#include "core/metrics/metrics.h"
#include "core/models/diffusion.h"
#include "core/models/diffusion_internal.h"
#include "core/pipeline/pipeline.h"
#include "core/sim/simulator.h"

namespace candies {
namespace {

double Inertia(const torch::Tensor& x, const std::vector<int32_t>& labels) {
  double total = 0;
  auto lab = torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()));
  for (int64_t c = 0; c <= lab.max().item<int64_t>(); ++c) {
    auto rows = x.index_select(0, (lab == c).nonzero().squeeze(1));
    if (rows.size(0) == 0) continue;
    total += (rows - rows.mean(0, true)).pow(2).sum().item<double>();
  }
  return total;
}

void Analyse(const torch::Tensor& x, const std::vector<int32_t>& truth, uint64_t seed) {
  std::printf("  truth inertia %.1f\n", Inertia(x, truth));
  for (int64_t n_init : {10, 100}) {
    for (uint64_t s : {seed, seed + 1, seed + 2}) {
      auto c = KMeans(x, 5, s, n_init);
      if (!c.ok()) continue;
      std::printf("  kmeans n_init %3ld seed %lu: ARI %.3f inertia %.1f\n", n_init, s,
                  metrics::AdjustedRandIndex(truth, c->labels), Inertia(x, c->labels));
    }
  }
  ClusterOptions o;
  o.n_clusters = 5;
  o.seed = seed;
  auto g = Cluster(x, o);
  if (g.ok()) std::printf("  mclust ARI %.3f\n", metrics::AdjustedRandIndex(truth, g->labels));
}

// k-means ARI (the measure of the denoised rows).
double Ari(const torch::Tensor& x, const std::vector<int32_t>& truth, uint64_t seed) {
  return ClusterAri(x, truth, ClusterMethod::kKmeans, seed);
}

int Main(int argc, char** argv) {
  int seeds = 5, seed0 = 0;
  std::string cache = "/tmp/denoise_lab";
  DiffusionOptions d = FastDiffusionOptions();
  bool kfold = false, analyse = false, reuse = false;
  // A sampler to try on the same trained fold models: "ddim|ddpm:steps:temperature".
  struct Cfg { std::string text; bool ddpm = false; int64_t steps = 10; double temp = 0; };
  std::vector<Cfg> configs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return argv[++i]; };
    if (a == "--seeds") seeds = std::atoi(next().c_str());
    else if (a == "--seed0") seed0 = std::atoi(next().c_str());
    else if (a == "--cache") cache = next();
    else if (a == "--epochs") d.max_epochs = std::atoll(next().c_str());
    else if (a == "--patience") d.patience = std::atoll(next().c_str());
    else if (a == "--temp") d.temperature = std::atof(next().c_str());
    else if (a == "--steps") d.sample_steps = std::atoll(next().c_str());
    else if (a == "--ddpm") d.sampler = DiffusionSampler::kDdpm;
    else if (a == "--hidden") d.hidden = std::atoll(next().c_str());
    else if (a == "--depth") d.depth = std::atoll(next().c_str());
    else if (a == "--heads") d.heads = std::atoll(next().c_str());
    else if (a == "--batch") d.batch_size = std::atoll(next().c_str());
    else if (a == "--lr") d.lr = std::atof(next().c_str());
    else if (a == "--lr-step") d.lr_step = std::atoll(next().c_str());
    else if (a == "--T") d.timesteps = std::atoll(next().c_str());
    else if (a == "--folds") d.folds = std::atoll(next().c_str());
    else if (a == "--kfold") kfold = true;
    else if (a == "--analyse") analyse = true;
    else if (a == "--reuse") reuse = true;  // analyse the saved denoised rows
    else if (a == "--no-center") d.center_folds = false;
    else if (a == "--global-cond") d.cond_per_spot = false;
    else if (a == "--sample") {  // ddim|ddpm:steps:temperature
      Cfg c;
      c.text = next();
      char kind[8] = {0};
      std::sscanf(c.text.c_str(), "%4[a-z]:%ld:%lf", kind, &c.steps, &c.temp);
      c.ddpm = std::string(kind) == "ddpm";
      configs.push_back(c);
    }
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  std::filesystem::create_directories(cache);
  if (configs.empty()) configs.push_back({"ddim:10:0"});
  std::vector<double> sums(configs.size(), 0.0);
  for (int seed = seed0; seed < seed0 + seeds; ++seed) {
    const std::string f = cache + "/seed" + std::to_string(seed) + ".pt";
    std::vector<torch::Tensor> t;
    if (std::filesystem::exists(f)) {
      torch::load(t, f);
    } else {
      SimulatorOptions so;
      so.seed = seed;
      auto sim = Simulate(so);
      if (!sim.ok()) return 1;
      PipelineOptions o = PipelineOptions::FromPreset(Preset::kFast);
      o.kind = JobKind::kIntegrate;
      o.n_clusters = 5;
      o.device = "cpu";
      o.seed = seed;
      auto rna = std::make_shared<AnnData>(std::move(sim->rna));
      auto prot = std::make_shared<AnnData>(std::move(sim->protein));
      auto r = RunPipeline({"rna", ModalityKind::kRna, rna}, {"prot", ModalityKind::kProtein, prot}, o);
      if (!r.ok()) { std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str()); return 1; }
      auto truth = torch::tensor(std::vector<int64_t>(sim->domain.begin(), sim->domain.end()));
      t = {r->emb_mod1, r->emb_mod2, truth};
      torch::save(t, f);
    }
    std::vector<int32_t> truth;
    auto tv = t[2].accessor<int64_t, 1>();
    for (int64_t i = 0; i < tv.size(0); ++i) truth.push_back(static_cast<int32_t>(tv[i]));
    d.seed = seed;
    if (reuse) {
      torch::Tensor den;
      torch::load(den, cache + "/den_seed" + std::to_string(seed) + ".pt");
      std::printf("seed %d saved denoised: kmeans ARI %.3f\n", seed, Ari(den, truth, seed));
      Analyse(den, truth, seed);
      std::fflush(stdout);
      continue;
    }
    if (kfold) {
      auto r = DenoiseKFold(t[0], t[1], d, torch::kCPU);
      if (!r.ok()) return 1;
      auto split = diffusion_internal::KFoldSplit(t[0].size(0), d.folds, seed);
      const double ak = Ari(r->denoised, truth, seed);
      torch::save(r->denoised, cache + "/den_seed" + std::to_string(seed) + ".pt");
      if (analyse) Analyse(r->denoised, truth, seed);
      sums[0] += ak;
      std::printf("seed %d kfold denoised %.3f  (%.1f s)\n", seed, ak, r->train_seconds + r->sample_seconds);
      for (int64_t f = 0; f < d.folds; ++f) {
        auto ho = torch::tensor(split[f]);
        std::vector<int32_t> tf;
        for (auto i : split[f]) tf.push_back(truth[i]);
        auto x = r->denoised.index_select(0, ho);
        std::printf("  fold %ld: ARI within %.3f  mean shift vs rna %.3f  fold mean norm %.3f\n", f,
                    Ari(x, tf, seed), (x.mean(0) - t[0].index_select(0, ho).mean(0)).norm().item<double>(),
                    x.mean(0).norm().item<double>());
        for (size_t l = 0; l < r->fold_losses[f].size(); l += 20) std::printf(" %.4f", r->fold_losses[f][l]);
        std::printf(" last %.4f (%zu epochs)\n", r->fold_losses[f].back(), r->fold_losses[f].size());
      }
      std::fflush(stdout);
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    const int64_t n = t[0].size(0);
    auto split = diffusion_internal::KFoldSplit(n, d.folds, seed);
    std::vector<torch::Tensor> outs(configs.size());
    for (auto& o : outs) o = torch::zeros_like(t[0]);
    for (int64_t f = 0; f < d.folds; ++f) {
      std::vector<int64_t> train;
      for (int64_t g = 0; g < d.folds; ++g)
        if (g != f) train.insert(train.end(), split[g].begin(), split[g].end());
      auto tr = torch::tensor(train), ho = torch::tensor(split[f]);
      DiffusionOptions df = d;
      df.seed = seed * 10 + f;
      auto m = TrainDenoiser(t[0].index_select(0, tr), t[1].index_select(0, tr), df, torch::kCPU);
      if (!m.ok()) { std::fprintf(stderr, "%s\n", std::string(m.status().message()).c_str()); return 1; }
      for (size_t c = 0; c < configs.size(); ++c) {
        const auto& k = configs[c];
        diffusion_internal::SetSampling(**m, k.ddpm ? DiffusionSampler::kDdpm : DiffusionSampler::kDdim,
                                        k.steps, k.temp);
        auto y = ApplyDenoiser(**m, t[1].index_select(0, ho), torch::kCPU);
        if (!y.ok()) return 1;
        outs[c].index_copy_(0, ho, *y);
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("seed %d  rna %.3f  prot %.3f  std rna %.3f  %.1f s\n", seed, Ari(t[0], truth, seed),
                Ari(t[1], truth, seed), t[0].std(0).mean().item<double>(), secs);
    for (size_t c = 0; c < configs.size(); ++c) {
      const double ac = Ari(outs[c], truth, seed);
      sums[c] += ac;
      auto cos = torch::nn::functional::cosine_similarity(outs[c], t[0]).mean().item<double>();
      std::printf("   %-22s denoised %.3f  cos %.3f  std %.3f\n", configs[c].text.c_str(), ac, cos,
                  outs[c].std(0).mean().item<double>());
    }
    std::fflush(stdout);
  }
  for (size_t c = 0; c < configs.size(); ++c)
    std::printf("mean %-22s %.3f\n", configs[c].text.c_str(), sums[c] / seeds);
  return 0;
}

}  // namespace
}  // namespace candies

int main(int argc, char** argv) { return candies::Main(argc, argv); }
