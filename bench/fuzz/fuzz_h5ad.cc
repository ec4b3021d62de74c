// libFuzzer: bytes -> a file in /dev/shm -> ReadH5ad and ReadH5mu (and the 10x
// reader), the production readers by path. Writing the file costs little next
// to H5Fopen itself (perf: fopen/fwrite/fclose are ~3% of the time per input),
// so an in-memory file image would not pay for a second, fuzz-only open path.
// Any crash, leak-free abort or sanitizer report is a finding; a clean error
// status is the expected outcome for almost every input.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include <hdf5.h>

#include "core/io/h5ad.h"

namespace {

std::string ScratchPath() {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/candies_fuzz_h5ad_" + std::to_string(getpid()) + ".h5";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = ScratchPath();
  // Every H5Fopen callocs a ~1 MiB metadata-cache struct that HDF5's default
  // free-list limits (1 MiB) hand back to malloc; under ASan that is a fresh
  // mmap and page faults per open (about a third of the time per input).
  // Larger limits let HDF5 reuse its blocks, as it does in production for
  // everything smaller. The reader's code path is unchanged.
  static const bool lists =
      H5set_free_list_limits(64 << 20, 16 << 20, 64 << 20, 16 << 20, 64 << 20, 16 << 20) >= 0;
  (void)lists;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  // Small limits: the fuzzer looks for crashes, not for big legitimate files.
  candies::ReadOptions options;
  options.limits.max_elements = 1 << 20;
  options.limits.max_element_bytes = 64 << 20;
  options.limits.max_total_bytes = 256 << 20;
  (void)candies::ReadH5ad(path, options);
  (void)candies::ReadH5mu(path, options);
  (void)candies::Read10xH5(path, "", options);
  return 0;
}
