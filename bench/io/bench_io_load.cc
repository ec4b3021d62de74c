// Writes a sparse AnnData with candies' own writer, reads it back and prints
// read seconds, MB/s and peak RSS against the matrix's in-memory size.
//
//   bench_io_load [--obs N] [--vars N] [--density D] [--dir DIR]
// Defaults: 100000 x 30000 at 5% density in /tmp (~1.5e8 stored entries).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "core/io/h5ad.h"

namespace {

// Peak resident set size in MiB (VmHWM), or -1.
double PeakRssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n_obs = 100000, n_vars = 30000;
  double density = 0.05;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--obs") n_obs = std::atoll(argv[i + 1]);
    else if (flag == "--vars") n_vars = std::atoll(argv[i + 1]);
    else if (flag == "--density") density = std::atof(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
    else { std::fprintf(stderr, "unknown flag %s\n", argv[i]); return 2; }
  }
  const std::string path = dir + "/candies_bench_io.h5ad";
  double matrix_mib = 0;
  {
    candies::AnnData a;
    a.X.format = candies::Matrix::Format::kCsr;
    a.X.n_rows = n_obs;
    a.X.n_cols = n_vars;
    a.X.dtype = candies::DType::kFloat32;
    const int64_t per_row = static_cast<int64_t>(density * n_vars);
    const int64_t step = per_row > 0 ? n_vars / per_row : n_vars;
    std::mt19937 rng(1);
    a.X.indptr.reserve(n_obs + 1);
    a.X.indptr.push_back(0);
    a.X.indices.reserve(n_obs * per_row);
    a.X.values.reserve(n_obs * per_row);
    for (int64_t r = 0; r < n_obs; ++r) {
      const int64_t offset = static_cast<int64_t>(rng() % step);
      for (int64_t k = 0; k < per_row; ++k) {
        a.X.indices.push_back(static_cast<int32_t>(offset + k * step));
        a.X.values.push_back(static_cast<float>(1 + rng() % 20));
      }
      a.X.indptr.push_back(static_cast<int64_t>(a.X.indices.size()));
    }
    for (int64_t r = 0; r < n_obs; ++r) a.obs.index.push_back("cell" + std::to_string(r));
    for (int64_t c = 0; c < n_vars; ++c) a.var.index.push_back("gene" + std::to_string(c));
    matrix_mib = (a.X.values.size() * 4.0 + a.X.indices.size() * 4.0 + a.X.indptr.size() * 8.0) /
                 (1024.0 * 1024.0);
    absl::Status st = candies::WriteH5ad(a, path);
    if (!st.ok()) {
      std::fprintf(stderr, "write failed: %s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  const double rss_before = PeakRssMiB();  // the writer's peak, for reference
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<candies::AnnData> b = candies::ReadH5ad(path);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!b.ok()) {
    std::fprintf(stderr, "read failed: %s\n", std::string(b.status().message()).c_str());
    return 1;
  }
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  const double file_mib = static_cast<double>(f.tellg()) / (1024.0 * 1024.0);
  const double dense_mib = static_cast<double>(n_obs) * n_vars * 4 / (1024.0 * 1024.0);
  std::printf("matrix        %lld x %lld, nnz %lld (density %.3f)\n",
              static_cast<long long>(n_obs), static_cast<long long>(n_vars),
              static_cast<long long>(b->X.nnz()), density);
  std::printf("file          %.1f MiB\n", file_mib);
  std::printf("read          %.2f s, %.1f MiB/s\n", secs, file_mib / secs);
  std::printf("in-memory CSR %.1f MiB (dense float32 would be %.1f MiB)\n", matrix_mib,
              dense_mib);
  std::printf("peak RSS      %.1f MiB (after write, before read: %.1f MiB)\n", PeakRssMiB(),
              rss_before);
  std::printf("peak / CSR    %.2fx\n", PeakRssMiB() / matrix_mib);
  std::remove(path.c_str());
  return 0;
}
