// What this binary was built with: the candies version, the LibTorch version and
// the CUDA version LibTorch was built for (empty for a CPU-only LibTorch). Set by
// CMake from find_package(Torch); no LibTorch include, so the daemon's server
// library and the CLI's --version can use it.
#pragma once

#include <string>

namespace candies {

struct BuildInfo {
  std::string candies;  // "0.1.0"
  std::string torch;    // "1.13.0" (Debian) or "2.11.0" (PyPI wheel)
  std::string cuda;     // "13.0", or "" when LibTorch has no CUDA
};

const BuildInfo& GetBuildInfo();

// "candies 0.1.0 (LibTorch 2.11.0, CUDA 13.0)" or "candies 0.1.0 (LibTorch 1.13.0, CPU only)".
std::string BuildInfoLine();

}  // namespace candies
