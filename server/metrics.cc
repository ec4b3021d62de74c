#include "server/metrics.h"

#include <dlfcn.h>
#include <unistd.h>

#include <exception>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/build_info.h"

namespace candies::server {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  jobs_ = &prometheus::BuildCounter()
               .Name("candies_jobs_total")
               .Help("Jobs that reached a final state, by kind and state")
               .Register(*registry_);
  duration_ = &prometheus::BuildHistogram()
                   .Name("candies_job_duration_seconds")
                   .Help("Run time of finished jobs, by kind")
                   .Register(*registry_);
  rpcs_ = &prometheus::BuildCounter()
               .Name("candies_rpcs_total")
               .Help("RPCs by method and gRPC status code")
               .Register(*registry_);
  rpc_seconds_ = &prometheus::BuildHistogram()
                      .Name("candies_rpc_duration_seconds")
                      .Help("RPC latency by method (streaming RPCs: the whole stream)")
                      .Register(*registry_);
  stage_seconds_ = &prometheus::BuildHistogram()
                        .Name("candies_stage_duration_seconds")
                        .Help("Pipeline stage durations (preprocess, gae, diffusion, ...)")
                        .Register(*registry_);
  device_memory_ = &prometheus::BuildGauge()
                        .Name("candies_device_memory_bytes")
                        .Help("Memory in use on the compute device (cpu: the daemon's RSS)")
                        .Register(*registry_);
  // candies_build_info{version,torch,cuda} 1: which LibTorch (and CUDA) this daemon runs.
  const BuildInfo& build = GetBuildInfo();
  prometheus::BuildGauge()
      .Name("candies_build_info")
      .Help("Always 1; labels: candies version, LibTorch version, CUDA version (empty: CPU only)")
      .Register(*registry_)
      .Add({{"version", build.candies}, {"torch", build.torch}, {"cuda", build.cuda}})
      .Set(1);
  models_resident_ = &prometheus::BuildGauge()
                          .Name("candies_models_resident")
                          .Help("Trained models held in memory")
                          .Register(*registry_)
                          .Add({});
  model_bytes_ = &prometheus::BuildGauge()
                      .Name("candies_model_bytes_resident")
                      .Help("Bytes of the trained models held in memory")
                      .Register(*registry_)
                      .Add({});
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("candies_queue_depth")
                      .Help("Jobs waiting to run")
                      .Register(*registry_)
                      .Add({});
  running_ = &prometheus::BuildGauge()
                  .Name("candies_jobs_running")
                  .Help("Jobs running now")
                  .Register(*registry_)
                  .Add({});
  auto& bytes = prometheus::BuildCounter()
                    .Name("candies_bytes_total")
                    .Help("Payload bytes uploaded (datasets) and downloaded (results)")
                    .Register(*registry_);
  uploaded_ = &bytes.Add({{"direction", "upload"}});
  downloaded_ = &bytes.Add({{"direction", "download"}});
}

void Metrics::JobFinished(const std::string& kind, const std::string& state, double seconds) {
  jobs_->Add({{"kind", kind}, {"state", state}}).Increment();
  // 1 s .. ~9 h, x3 per bucket: jobs range from seconds (fast preset) to hours.
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000};
  duration_->Add({{"kind", kind}}, kBuckets).Observe(seconds);
}

void Metrics::Rpc(const std::string& method, const std::string& code, double seconds) {
  rpcs_->Add({{"method", method}, {"code", code}}).Increment();
  // 100 us .. 100 s: unary calls are sub-millisecond, uploads and watches long.
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100};
  rpc_seconds_->Add({{"method", method}}, kBuckets).Observe(seconds);
}

void Metrics::StageFinished(const std::string& stage, double seconds) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000};
  stage_seconds_->Add({{"stage", stage}}, kBuckets).Observe(seconds);
}

void Metrics::SetDeviceMemory(const std::string& device, double bytes) {
  device_memory_->Add({{"device", device}}).Set(bytes);
}

namespace {

// NVML (the NVIDIA driver's management library), loaded at run time so that
// candiesd needs no CUDA toolkit and runs unchanged on hosts without a GPU.
// Reports each GPU's memory in use as the driver sees it (all processes).
class Nvml {
 public:
  static Nvml& Get() {
    static Nvml nvml;
    return nvml;
  }
  // Memory in use per device index; empty when NVML is not there.
  std::vector<double> UsedBytes() {
    std::vector<double> out;
    if (!ok_) return out;
    unsigned count = 0;
    if (count_(&count) != 0) return out;
    for (unsigned i = 0; i < count; ++i) {
      void* dev = nullptr;
      Memory m{};
      if (handle_(i, &dev) != 0 || memory_(dev, &m) != 0) break;
      out.push_back(static_cast<double>(m.used));
    }
    return out;
  }

 private:
  struct Memory {  // nvmlMemory_t
    unsigned long long total, free, used;
  };
  Nvml() {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;
    using Init = int (*)();
    auto init = reinterpret_cast<Init>(dlsym(lib, "nvmlInit_v2"));
    count_ = reinterpret_cast<decltype(count_)>(dlsym(lib, "nvmlDeviceGetCount_v2"));
    handle_ = reinterpret_cast<decltype(handle_)>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    memory_ = reinterpret_cast<decltype(memory_)>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
    ok_ = init != nullptr && count_ != nullptr && handle_ != nullptr && memory_ != nullptr &&
          init() == 0;
  }
  bool ok_ = false;
  int (*count_)(unsigned*) = nullptr;
  int (*handle_)(unsigned, void**) = nullptr;
  int (*memory_)(void*, Memory*) = nullptr;
};

}  // namespace

void Metrics::Refresh() {
  const std::vector<double> gpus = Nvml::Get().UsedBytes();
  for (size_t i = 0; i < gpus.size(); ++i) SetDeviceMemory(absl::StrCat("cuda:", i), gpus[i]);
  // statm: size resident shared ... in pages.
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  if (statm >> size >> resident) {
    SetDeviceMemory("cpu", static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
}

}  // namespace candies::server
