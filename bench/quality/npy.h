// Minimal .npy writer for the quality benches' --dump option: float32 and
// int32/int64 arrays, C order, read by numpy.load. Bench-only (not a data
// format of the service: results travel as .h5ad).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/types.h>

namespace candies {

inline bool WriteNpyRaw(const std::string& path, const char* descr, const std::vector<int64_t>& shape,
                        const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' padded to 64 bytes.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const uint16_t len = static_cast<uint16_t>(header.size());
  bool ok = std::fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && std::fwrite(&len, 2, 1, f) == 1 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data, 1, bytes, f) == bytes;
  return std::fclose(f) == 0 && ok;
}

inline bool WriteNpy(const std::string& path, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return WriteNpyRaw(path, "<f4", c.sizes().vec(), c.data_ptr<float>(), c.numel() * sizeof(float));
}

template <typename T>
bool WriteNpy(const std::string& path, const std::vector<T>& v, std::vector<int64_t> shape) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "int32 or int64");
  return WriteNpyRaw(path, sizeof(T) == 4 ? "<i4" : "<i8", shape, v.data(), v.size() * sizeof(T));
}

}  // namespace candies
