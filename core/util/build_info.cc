#include "core/util/build_info.h"

#include "absl/strings/str_cat.h"

// core/CMakeLists.txt defines these on this file only, so a LibTorch change
// recompiles one small translation unit.
#ifndef CANDIES_BUILD_VERSION
#define CANDIES_BUILD_VERSION "dev"
#endif
#ifndef CANDIES_BUILD_TORCH_VERSION
#define CANDIES_BUILD_TORCH_VERSION "unknown"
#endif
#ifndef CANDIES_BUILD_CUDA_VERSION
#define CANDIES_BUILD_CUDA_VERSION ""
#endif

namespace candies {

const BuildInfo& GetBuildInfo() {
  static const BuildInfo info{CANDIES_BUILD_VERSION, CANDIES_BUILD_TORCH_VERSION,
                              CANDIES_BUILD_CUDA_VERSION};
  return info;
}

std::string BuildInfoLine() {
  const BuildInfo& b = GetBuildInfo();
  return absl::StrCat("candies ", b.candies, " (LibTorch ", b.torch, ", ",
                      b.cuda.empty() ? std::string("CPU only") : absl::StrCat("CUDA ", b.cuda),
                      ")");
}

}  // namespace candies
