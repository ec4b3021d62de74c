// FNV-1a 64 (offset 14695981039346656037, prime 1099511628211): the upload
// checksum of candies.proto, computed the same way by the server and the CLI.
#pragma once

#include <cstddef>
#include <cstdint>

namespace candies {

inline constexpr uint64_t kFnv1a64Offset = 14695981039346656037ull;

// Continues `state` over n bytes at `data` (start with kFnv1a64Offset).
inline uint64_t Fnv1a64(const void* data, size_t n, uint64_t state = kFnv1a64Offset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    state ^= p[i];
    state *= 1099511628211ull;
  }
  return state;
}

}  // namespace candies
