#include "core/runtime/cuda_memory.h"

#include "core/runtime/runtime.h"

#ifdef CANDIES_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace candies {

#ifdef CANDIES_WITH_CUDA

namespace {
constexpr size_t kAggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
}  // namespace

CudaMemoryStats GetCudaMemoryStats(int device_index) {
  CudaMemoryStats out;
  if (!CudaAvailable()) return out;
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  out.available = true;
  out.allocated = stats.allocated_bytes[kAggregate].current;
  out.peak_allocated = stats.allocated_bytes[kAggregate].peak;
  out.reserved = stats.reserved_bytes[kAggregate].current;
  return out;
}

void ResetCudaPeakMemory(int device_index) {
  if (CudaAvailable()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
  }
}

void ReleaseCachedCudaMemory() {
  if (CudaAvailable()) c10::cuda::CUDACachingAllocator::emptyCache();
}

#else

CudaMemoryStats GetCudaMemoryStats(int) { return {}; }
void ResetCudaPeakMemory(int) {}
void ReleaseCachedCudaMemory() {}

#endif

}  // namespace candies
