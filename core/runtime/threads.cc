#include "core/runtime/threads.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

#include <ATen/Parallel.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace candies {
namespace {

// cgroup v2 "cpu.max" is "QUOTA PERIOD" or "max PERIOD"; v1 has two files.
// Returns the quota in cores (rounded up), or 0 when there is none.
int CgroupQuotaCores() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota, period;
  if (v2 >> quota >> period) {
    double q = 0, p = 0;
    if (quota != "max" && absl::SimpleAtod(quota, &q) && absl::SimpleAtod(period, &p) && q > 0 && p > 0)
      return static_cast<int>(std::ceil(q / p));
    return 0;
  }
  std::ifstream q1("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p1("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  long long q = 0, p = 0;
  if ((q1 >> q) && (p1 >> p) && q > 0 && p > 0) return static_cast<int>((q + p - 1) / p);
  return 0;
}

using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

// OpenBLAS is linked by LibTorch (Debian's libopenblas0-pthread via the libblas
// alternative); looked up at run time so that another BLAS still works.
SetThreadsFn OpenBlasSet() {
  return reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}
GetThreadsFn OpenBlasGet() {
  return reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}

using CoreNameFn = char* (*)();
using VoidFn = void (*)();

std::string g_blas_core_was;

std::string BlasCoreName() {
  auto name = reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* s = name != nullptr ? name() : nullptr;
  return s != nullptr ? std::string(s) : std::string();
}

// See threads.h: replaces OpenBLAS's Prescott fallback by the kernels this CPU
// can run. Runs once, before this process's first GEMM of a job.
void UpgradeBlasKernels() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::string was = BlasCoreName();
  if (absl::AsciiStrToLower(was) != "prescott") return;
  const char* core = nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    core = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    core = "Haswell";
  }
  auto quit = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (core == nullptr || quit == nullptr || init == nullptr) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
  g_blas_core_was = was;
}

bool OmpPassive() {
  const char* v = std::getenv("OMP_WAIT_POLICY");
  return v != nullptr && absl::AsciiStrToLower(v) == "passive";
}

int g_requested = 0;

}  // namespace

int AvailableCores() {
  int cores = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (cores <= 0) cores = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  const int quota = CgroupQuotaCores();
  if (quota > 0) cores = std::min(cores, quota);
  return std::max(1, cores);
}

ThreadSettings ConfigureThreads(int threads) {
  static std::once_flag blas_kernels;
  std::call_once(blas_kernels, UpgradeBlasKernels);
  const int cores = AvailableCores();
  const int budget = threads > 0 ? threads : cores;
  g_requested = std::max(0, threads);
  if (SetThreadsFn set = OpenBlasSet()) set(budget);
  // Without OpenBLAS (the CUDA build's wheel: MKL inside the OpenMP pool) the
  // OpenMP pool is where the GEMMs run, so it takes the budget.
  at::set_num_threads(OmpPassive() || OpenBlasSet() == nullptr ? budget : 1);
  return CurrentThreadSettings();
}

ThreadSettings CurrentThreadSettings() {
  ThreadSettings s;
  s.cores = AvailableCores();
  s.requested = g_requested;
  GetThreadsFn get = OpenBlasGet();
  s.blas = get != nullptr ? get() : -1;
  s.intra_op = at::get_num_threads();
  s.interop = at::get_num_interop_threads();
  s.omp_passive = OmpPassive();
  if (s.blas >= 0) s.blas_core = BlasCoreName();
  s.blas_core_was = g_blas_core_was;
  return s;
}

std::string DescribeThreads(const ThreadSettings& s) {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  return absl::StrCat("threads: cores ", s.cores, ", requested ",
                      s.requested > 0 ? absl::StrCat(s.requested) : std::string("auto"),
                      ", OpenBLAS ", s.blas >= 0 ? absl::StrCat(s.blas) : std::string("n/a"),
                      s.blas_core.empty() ? "" : absl::StrCat(" (", s.blas_core, " kernels",
                                                              s.blas_core_was.empty() ? "" : absl::StrCat(", was ", s.blas_core_was),
                                                              ")"),
                      ", torch intra-op ", s.intra_op, ", inter-op ", s.interop,
                      ", OMP_WAIT_POLICY ", policy != nullptr ? policy : "unset");
}

}  // namespace candies
