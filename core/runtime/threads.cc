#include "core/runtime/threads.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
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
  const int cores = AvailableCores();
  const int budget = threads > 0 ? threads : cores;
  g_requested = std::max(0, threads);
  if (SetThreadsFn set = OpenBlasSet()) set(budget);
  at::set_num_threads(OmpPassive() ? budget : 1);
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
  return s;
}

std::string DescribeThreads(const ThreadSettings& s) {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  return absl::StrCat("threads: cores ", s.cores, ", requested ",
                      s.requested > 0 ? absl::StrCat(s.requested) : std::string("auto"),
                      ", OpenBLAS ", s.blas >= 0 ? absl::StrCat(s.blas) : std::string("n/a"),
                      ", torch intra-op ", s.intra_op, ", inter-op ", s.interop,
                      ", OMP_WAIT_POLICY ", policy != nullptr ? policy : "unset");
}

}  // namespace candies
