#include "core/runtime/runtime.h"

#include <sched.h>
#include <stdlib.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "core/runtime/threads.h"
#include "core/runtime/torch_compat.h"
#include "core/util/build_info.h"

namespace candies {
namespace {

TEST(BuildInfo, NamesTheLibTorchThisBinaryWasCompiledAgainst) {
  const BuildInfo& b = GetBuildInfo();
  EXPECT_EQ(b.torch,
            absl::StrCat(TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH));
#ifdef CANDIES_WITH_CUDA
  EXPECT_FALSE(b.cuda.empty());
  EXPECT_NE(BuildInfoLine().find("CUDA " + b.cuda), std::string::npos) << BuildInfoLine();
#else
  EXPECT_TRUE(b.cuda.empty());
  EXPECT_NE(BuildInfoLine().find("CPU only"), std::string::npos) << BuildInfoLine();
#endif
  EXPECT_NE(BuildInfoLine().find("LibTorch " + b.torch), std::string::npos) << BuildInfoLine();
}

TEST(TorchCompat, AutocastScopeSetsAndRestoresTheCudaFlags) {
  const bool before = compat::CudaAutocastEnabled();
  const at::ScalarType dtype_before = compat::CudaAutocastDtype();
  {
    CudaBf16AutocastScope on(true);
    EXPECT_TRUE(compat::CudaAutocastEnabled());
    EXPECT_EQ(compat::CudaAutocastDtype(), at::kBFloat16);
    {
      CudaBf16AutocastScope off(false);  // a no-op: the outer scope stays in force
      EXPECT_TRUE(compat::CudaAutocastEnabled());
    }
  }
  EXPECT_EQ(compat::CudaAutocastEnabled(), before);
  EXPECT_EQ(compat::CudaAutocastDtype(), dtype_before);
}

TEST(ResolveDevice, CpuAndAuto) {
  auto cpu = ResolveDevice("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(cpu->is_cpu());
  auto automatic = ResolveDevice("auto");
  ASSERT_TRUE(automatic.ok()) << automatic.status();
  EXPECT_EQ(automatic->is_cuda(), CudaAvailable());
}

TEST(ResolveDevice, RejectsUnknownSpellingNamingIt) {
  auto bad = ResolveDevice("gpu0");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("gpu0"), std::string::npos);
  auto bad_index = ResolveDevice("cuda:x");
  EXPECT_FALSE(bad_index.ok());
}

TEST(ResolveDevice, CudaWithoutDeviceIsFailedPrecondition) {
  if (CudaAvailable()) GTEST_SKIP() << "a CUDA device is present; covered by the CUDA run";
  auto cuda = ResolveDevice("cuda");
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SeedEverything, SameSeedSameDraws) {
  SeedEverything(7);
  torch::Tensor a = torch::randn({16});
  SeedEverything(7);
  torch::Tensor b = torch::randn({16});
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(Args, ParsesValuesSwitchesAndDefaults) {
  std::vector<cli::FlagSpec> specs = {{"out", true, "output", ""},
                                      {"seed", true, "seed", "0"},
                                      {"verbose", false, "switch", ""}};
  auto args = cli::Args::Parse({"in.h5ad", "--out", "o.h5ad", "--verbose", "--seed=5"}, specs);
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->Get("out"), "o.h5ad");
  EXPECT_TRUE(args->Has("verbose"));
  EXPECT_EQ(*args->GetInt("seed"), 5);
  ASSERT_EQ(args->positional().size(), 1u);
  EXPECT_EQ(args->positional()[0], "in.h5ad");
}

TEST(Args, UnknownFlagAndMissingValueAreErrorsNamingTheFlag) {
  std::vector<cli::FlagSpec> specs = {{"out", true, "output", ""}};
  auto unknown = cli::Args::Parse({"--outt", "x"}, specs);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("--outt"), std::string::npos);
  auto missing = cli::Args::Parse({"--out"}, specs);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--out"), std::string::npos);
  auto args = cli::Args::Parse({"--out", "x"}, specs);
  ASSERT_TRUE(args.ok());
  EXPECT_FALSE(args->GetInt("out").ok());
}

TEST(Threads, AvailableCoresIsWithinTheAffinityMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cores = AvailableCores();
  EXPECT_GE(cores, 1);
  EXPECT_LE(cores, CPU_COUNT(&set));
}

TEST(Threads, BudgetGoesToOpenBlasAndTheOpenMpPoolStaysAtOneUnderActiveWait) {
  ASSERT_EQ(unsetenv("OMP_WAIT_POLICY"), 0);
  const ThreadSettings all = ConfigureThreads(0);
  EXPECT_EQ(all.cores, AvailableCores());
  EXPECT_EQ(all.requested, 0);
  EXPECT_EQ(all.intra_op, all.blas >= 0 ? 1 : all.cores);  // no OpenBLAS: GEMMs in the OpenMP pool
  if (all.blas >= 0) { EXPECT_EQ(all.blas, all.cores); }  // -1: not OpenBLAS
  const ThreadSettings one = ConfigureThreads(1);
  EXPECT_EQ(one.requested, 1);
  EXPECT_EQ(one.intra_op, 1);
  if (one.blas >= 0) { EXPECT_EQ(one.blas, 1); }
  const std::string line = DescribeThreads(one);
  EXPECT_NE(line.find("requested 1"), std::string::npos) << line;
  EXPECT_NE(line.find("torch intra-op 1"), std::string::npos) << line;
  EXPECT_NE(line.find("OMP_WAIT_POLICY unset"), std::string::npos) << line;
}

TEST(Threads, PassiveWaitLetsTheOpenMpPoolTakeTheBudget) {
  ASSERT_EQ(setenv("OMP_WAIT_POLICY", "PASSIVE", 1), 0);
  const ThreadSettings two = ConfigureThreads(2);
  EXPECT_TRUE(two.omp_passive);
  EXPECT_EQ(two.intra_op, 2);
  if (two.blas >= 0) { EXPECT_EQ(two.blas, 2); }
  ASSERT_EQ(unsetenv("OMP_WAIT_POLICY"), 0);
  const ThreadSettings active = ConfigureThreads(0);
  EXPECT_EQ(active.intra_op, active.blas >= 0 ? 1 : active.cores);
}

TEST(Threads, OpenBlasRunsKernelsThisCpuSupportsNotTheSse3Fallback) {
  const ThreadSettings s = ConfigureThreads(0);
  if (s.blas < 0) {
    // Not OpenBLAS (the CUDA build's LibTorch wheel brings its own BLAS): nothing switched.
    EXPECT_TRUE(s.blas_core.empty());
    EXPECT_NE(DescribeThreads(s).find("OpenBLAS n/a"), std::string::npos) << DescribeThreads(s);
    return;
  }
  __builtin_cpu_init();
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma")) {
    EXPECT_NE(s.blas_core, "Prescott") << DescribeThreads(s);
  }
  EXPECT_NE(DescribeThreads(s).find(s.blas_core + " kernels"), std::string::npos) << DescribeThreads(s);
  // The product is still right after the kernels were switched.
  auto a = torch::arange(12, torch::kFloat32).reshape({3, 4});
  auto b = torch::ones({4, 2});
  EXPECT_TRUE(torch::equal(torch::mm(a, b), torch::tensor({{6.f, 6.f}, {22.f, 22.f}, {38.f, 38.f}})));
}

}  // namespace
}  // namespace candies
