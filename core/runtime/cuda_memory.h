// The CUDA caching allocator's view of GPU memory, for benchmarks, the GPU check
// and the daemon. Only the CUDA build (LibTorch 2.x + CUDA, CANDIES_WITH_CUDA)
// has an allocator to ask; the CPU build answers "none" and releases nothing.
#pragma once

#include <cstdint>

namespace candies {

struct CudaMemoryStats {
  bool available = false;      // false: CPU build, or no CUDA device
  int64_t allocated = 0;       // bytes in tensors now
  int64_t peak_allocated = 0;  // most bytes in tensors since the last ResetCudaPeakMemory
  int64_t reserved = 0;        // bytes the allocator holds from the driver (cache included)
};

CudaMemoryStats GetCudaMemoryStats(int device_index);
void ResetCudaPeakMemory(int device_index);

// Gives the allocator's cached, unused blocks back to the driver, so that one
// job's peak does not stay reserved for the next (the daemon calls it after each
// job). A no-op without CUDA.
void ReleaseCachedCudaMemory();

}  // namespace candies
