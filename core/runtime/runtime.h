// Run-time choices shared by every numeric stage: the torch::Device, the seed and
// the thread count. No stage hard-wires a device; they all take one from here.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace candies {

// Parses "auto" | "cpu" | "cuda" | "cuda:N". "auto" picks CUDA device 0 when this
// LibTorch build has CUDA and a device is visible, else the CPU. Asking for CUDA
// on a CPU-only build is FailedPrecondition, not a crash.
absl::StatusOr<torch::Device> ResolveDevice(absl::string_view spec);

// Seeds torch (CPU and CUDA) so that the same seed and device give the same
// result. Call once per job before any random draw.
void SeedEverything(uint64_t seed);

// Applies a CPU thread budget to this process (0: the cores it may use);
// ConfigureThreads in core/runtime/threads.h says how it is split.
void SetNumThreads(int threads);

// "cpu" or "cuda:0"; for logs and uns["candies"]["device"].
std::string DeviceName(const torch::Device& device);

// True when this LibTorch build can use CUDA on this machine.
bool CudaAvailable();

}  // namespace candies
