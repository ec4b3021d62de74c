#include "core/runtime/runtime.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "core/runtime/threads.h"

namespace candies {

bool CudaAvailable() { return torch::cuda::is_available(); }

absl::StatusOr<torch::Device> ResolveDevice(absl::string_view spec) {
  if (spec.empty() || spec == "auto") {
    return CudaAvailable() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec == "cuda" || absl::StartsWith(spec, "cuda:")) {
    int index = 0;
    if (spec.size() > 5 && !absl::SimpleAtoi(spec.substr(5), &index)) {
      return absl::InvalidArgumentError(
          absl::StrCat("device: '", spec, "' is not cuda:N with an integer N"));
    }
    if (!CudaAvailable()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device: '", spec, "' requested but this build of LibTorch sees no CUDA device"));
    }
    if (index < 0 || index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::InvalidArgumentError(absl::StrCat("device: no CUDA device ", index, " (",
                                                     torch::cuda::device_count(), " visible)"));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device: '", spec, "' is not one of auto, cpu, cuda, cuda:N"));
}

void SeedEverything(uint64_t seed) {
  torch::manual_seed(seed);
  if (CudaAvailable()) torch::cuda::manual_seed_all(seed);
}

void SetNumThreads(int threads) { ConfigureThreads(threads); }

std::string DeviceName(const torch::Device& device) { return device.str(); }

}  // namespace candies
