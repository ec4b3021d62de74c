// The device the end-to-end tests run the pipeline on: CANDIES_TEST_DEVICE
// (cpu | cuda | cuda:N; default cpu). scripts/gpu-check.sh sets it to cuda on a GPU
// machine, so the same assertions check the CUDA code paths there.
#pragma once

#include <cstdlib>
#include <string>

namespace candies {

inline std::string TestDeviceName() {
  const char* env = std::getenv("CANDIES_TEST_DEVICE");
  return env != nullptr && *env != '\0' ? env : "cpu";
}

}  // namespace candies
