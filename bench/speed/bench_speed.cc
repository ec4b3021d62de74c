// Times the diffusion denoiser (training seconds/epoch, sampling seconds) for the
// fast and paper presets at the paper's simulation size (N=1296 spots, d=256
// low-quality embedding, c=64 condition) and prints them beside the authors'
// whole-method GPU figure (355 s). Quality on the synthetic problem
// low = f(high) + noise is printed as |denoised - f| / |low - f|.
//
// Usage: bench_speed [--device=cpu|cuda|auto] [--paper_full] [--n=1296] [--bf16] [--fast_only] [--threads=N]
//   --threads: CPU thread budget (0: the cores available; core/runtime/threads.h).
//   --bf16: the denoiser's bf16 autocast (CUDA only; fp32 losses).
//   The fast preset always runs in full (3 folds). The paper preset on a CPU is
//   extrapolated from a few epochs and 10 sampling steps unless --paper_full.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/metrics/metrics.h"
#include "core/models/diffusion.h"
#include "core/models/diffusion_internal.h"
#include "core/pipeline/pipeline.h"
#include "core/runtime/cuda_memory.h"
#include "core/runtime/runtime.h"
#include "core/runtime/threads.h"
#include "core/sim/simulator.h"

namespace {

struct Row {
  std::string name;
  double epochs = 0, train_s = 0, s_per_epoch = 0, sample_s = 0, total_s = 0, ratio = -1;
  bool extrapolated = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string device_spec = "auto";
  bool paper_full = false;
  bool bf16 = false;
  bool fast_only = false;  // skip the paper preset (the GPU check's CPU smoke)
  bool sweep = false;
  bool whole = true;  // also time the whole method (candies run, fast preset) on the simulator
  int64_t n = 1296;
  int threads = 0;
  candies::DiffusionOptions fast = candies::FastDiffusionOptions();
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--device=", 9) == 0) device_spec = argv[i] + 9;
    else if (std::strcmp(argv[i], "--paper_full") == 0) paper_full = true;
    else if (std::strcmp(argv[i], "--bf16") == 0) bf16 = true;
    else if (std::strcmp(argv[i], "--fast_only") == 0) fast_only = true;
    else if (std::strcmp(argv[i], "--sweep") == 0) sweep = true;
    else if (std::strcmp(argv[i], "--no_pipeline") == 0) whole = false;
    else if (std::strcmp(argv[i], "--no_center") == 0) fast.center_folds = false;
    else if (std::strncmp(argv[i], "--hidden=", 9) == 0) fast.hidden = std::stoll(argv[i] + 9);
    else if (std::strncmp(argv[i], "--depth=", 8) == 0) fast.depth = std::stoll(argv[i] + 8);
    else if (std::strncmp(argv[i], "--heads=", 8) == 0) fast.heads = std::stoll(argv[i] + 8);
    else if (std::strncmp(argv[i], "--epochs=", 9) == 0) fast.max_epochs = std::stoll(argv[i] + 9);
    else if (std::strncmp(argv[i], "--batch=", 8) == 0) fast.batch_size = std::stoll(argv[i] + 8);
    else if (std::strncmp(argv[i], "--T=", 4) == 0) fast.timesteps = std::stoll(argv[i] + 4);
    else if (std::strncmp(argv[i], "--steps=", 8) == 0) fast.sample_steps = std::stoll(argv[i] + 8);
    else if (std::strncmp(argv[i], "--lr_step=", 10) == 0) fast.lr_step = std::stoll(argv[i] + 10);
    else if (std::strncmp(argv[i], "--n=", 4) == 0) n = std::stoll(argv[i] + 4);
    else if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::stoi(argv[i] + 10);
    else {
      std::fprintf(stderr, "usage: %s [--device=auto|cpu|cuda] [--paper_full] [--sweep] [--no_pipeline] [--no_center] [--n=1296] [--threads=N] [--hidden= --depth= --heads= --epochs= --batch= --T= --steps= --lr_step=]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("%s\n", candies::DescribeThreads(candies::ConfigureThreads(threads)).c_str());
  auto device = candies::ResolveDevice(device_spec);
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", device.status().ToString().c_str());
    return 1;
  }
  const int64_t d = 256, c = 64;
  auto gen = at::detail::createCPUGenerator(42);
  auto high = torch::randn({n, c}, gen, torch::kFloat32);
  auto w = torch::randn({c, d}, gen, torch::kFloat32) / 8.0;
  auto clean = torch::tanh(high.matmul(w));
  auto low = clean + 0.5 * torch::randn({n, d}, gen, torch::kFloat32);
  const double noisy_err = (low - clean).norm().item<double>();

  if (sweep) {
    // Quality vs sampler: train the fast preset once on 2/3 of the spots, then
    // generate the other third with each sampler setting.
    const int64_t n_train = n * 2 / 3;
    auto o = fast;
    auto model = candies::TrainDenoiser(low.slice(0, 0, n_train), high.slice(0, 0, n_train), o, *device);
    if (!model.ok()) return 1;
    std::printf("trained on %lld spots\n", static_cast<long long>(n_train));
    auto ho_clean = clean.slice(0, n_train), ho_low = low.slice(0, n_train);
    const double ho_err = (ho_low - ho_clean).norm().item<double>();
    std::printf("%-7s %6s %6s %10s %10s\n", "sampler", "steps", "temp", "err_ratio", "sample_s");
    auto one = [&](candies::DiffusionSampler sampler, int64_t steps, double temp) {
      candies::diffusion_internal::SetSampling(**model, sampler, steps, temp);
      auto t0 = std::chrono::steady_clock::now();
      auto out = candies::ApplyDenoiser(**model, high.slice(0, n_train), *device);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%-7s %6lld %6.2f %10.3f %10.2f\n", candies::DiffusionSamplerName(sampler),
                  static_cast<long long>(steps), temp, (*out - ho_clean).norm().item<double>() / ho_err, s);
    };
    for (double temp : {1.0, 0.5, 0.0})
      for (int64_t steps : {2, 5, 10, 25, 50}) one(candies::DiffusionSampler::kDdim, steps, temp);
    for (double temp : {1.0, 0.5}) one(candies::DiffusionSampler::kDdpm, 0, temp);
    return 0;
  }

  std::vector<Row> rows;
  auto run = [&](const std::string& name, candies::DiffusionOptions o, bool full) {
    Row r;
    r.name = name;
    const int64_t full_epochs = o.max_epochs;
    const int64_t full_steps = o.sampler == candies::DiffusionSampler::kDdim
                                   ? (o.sample_steps > 0 ? o.sample_steps : 50)
                                   : o.timesteps;
    if (!full) {
      // A few epochs and 10 DDIM steps; the per-step cost does not depend on T.
      o.max_epochs = 3;
      o.patience = 0;
      o.sampler = candies::DiffusionSampler::kDdim;
      o.sample_steps = 10;
    }
    auto res = candies::DenoiseKFold(low, high, o, *device);
    if (!res.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), res.status().ToString().c_str());
      std::exit(1);
    }
    for (const auto& f : res->fold_losses) r.epochs += static_cast<double>(f.size());
    std::printf("%s: fold 1 loss first %.4f last %.4f after %zu epochs\n", name.c_str(),
                res->fold_losses[0].front(), res->fold_losses[0].back(), res->fold_losses[0].size());
    r.s_per_epoch = res->train_seconds / r.epochs;  // per fold-epoch
    r.train_s = res->train_seconds;
    r.sample_s = res->sample_seconds;
    if (!full) {
      r.extrapolated = true;
      r.epochs = static_cast<double>(full_epochs * o.folds);
      r.train_s = r.s_per_epoch * r.epochs;
      r.sample_s = res->sample_seconds / 10.0 * static_cast<double>(full_steps);
    } else {
      r.ratio = (res->denoised - clean).norm().item<double>() / noisy_err;
    }
    r.total_s = r.train_s + r.sample_s;
    rows.push_back(r);
  };
  fast.bf16_autocast = bf16;
  run("fast", fast, true);
  candies::DiffusionOptions paper = candies::PaperDiffusionOptions();
  paper.bf16_autocast = bf16;
  if (!fast_only) run("paper", paper, paper_full || device->is_cuda());

  std::printf("diffusion denoiser, N=%lld spots, d=%lld low, c=%lld cond, 3 folds, device %s, torch intra-op threads %d\n",
              static_cast<long long>(n), static_cast<long long>(d), static_cast<long long>(c),
              candies::DeviceName(*device).c_str(), torch::get_num_threads());
  std::printf("%-6s %10s %12s %10s %10s %10s %12s %s\n", "preset", "fold-ep", "s/fold-ep", "train_s",
              "sample_s", "total_s", "err_ratio", "note");
  for (const auto& r : rows) {
    std::printf("%-6s %10.0f %12.4f %10.2f %10.2f %10.2f %12s %s\n", r.name.c_str(), r.epochs, r.s_per_epoch,
                r.train_s, r.sample_s, r.total_s,
                r.ratio < 0 ? "-" : std::to_string(r.ratio).substr(0, 5).c_str(),
                r.extrapolated ? "extrapolated (max_epochs, all steps)" : "measured");
  }
  if (whole) {
    // The whole method as `candies run --preset fast` runs it: the paper's
    // simulation (1296 spots, RNA sd 3 / dropout 0.3), kind full, seed 0.
    auto sim = candies::Simulate(candies::SimulatorOptions());
    if (!sim.ok()) { std::fprintf(stderr, "%s\n", sim.status().ToString().c_str()); return 1; }
    candies::PipelineOptions po = candies::PipelineOptions::FromPreset(candies::Preset::kFast);
    po.n_clusters = 5;
    po.device = device_spec;
    po.threads = threads;
    po.diffusion.bf16_autocast = bf16;
    auto rna = std::make_shared<candies::AnnData>(std::move(sim->rna));
    auto prot = std::make_shared<candies::AnnData>(std::move(sim->protein));
    auto r = candies::RunPipeline({"rna", candies::ModalityKind::kRna, rna},
                                  {"prot", candies::ModalityKind::kProtein, prot}, po);
    if (!r.ok()) { std::fprintf(stderr, "%s\n", r.status().ToString().c_str()); return 1; }
    double total = 0;
    std::printf("whole method, preset fast, kind full, 1296 spots, device %s, torch intra-op threads %d:\n",
                candies::DeviceName(*device).c_str(), torch::get_num_threads());
    for (const auto& [stage, sec] : r->stage_seconds) {
      std::printf("  %-12s %8.2f s\n", stage.c_str(), sec);
      if (stage == "total") total = sec;
    }
    std::printf("  ARI %.4f\n", candies::metrics::AdjustedRandIndex(sim->domain, r->clusters));
    std::printf("ours %.1f s vs authors 355 s (whole CANDIES method, one consumer GPU): %.2fx\n",
                total, 355.0 / total);
  } else {
    std::printf("authors: whole CANDIES method on one consumer GPU (simulation): 355 s\n");
  }
  const candies::CudaMemoryStats gpu = candies::GetCudaMemoryStats(device->is_cuda() ? device->index() : 0);
  if (gpu.available) std::printf("peak GPU memory %.0f MiB\n", gpu.peak_allocated / 1048576.0);
  return 0;
}
