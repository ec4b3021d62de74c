// Assembles one UploadDataset stream into the AnnData to store: validates the
// header, then takes dense row blocks or CSR blocks one chunk at a time,
// checks the running checksum and the finished shape. gRPC-free, so it can be
// tested and fuzzed on UploadChunk messages alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "candies/v1/candies.pb.h"
#include "core/io/anndata.h"

namespace candies::server {

struct UploadLimits {
  // Largest upload: the declared dense size n_obs * n_vars * 4 bytes, and the
  // real bytes received (dense: 4 per value; CSR: nnz * (4 + 4) + indptr * 8),
  // counted as blocks arrive.
  int64_t max_upload_bytes = int64_t{4} << 30;
  int max_obs_columns = 64;  // extra obs columns of one upload
};

struct AssembledUpload {
  AnnData adata;
  std::string name;  // from the header
  v1::ModalityKind kind = v1::ModalityKind();
  int64_t n_obs = 0;
  int64_t n_vars = 0;
  int64_t wire_bytes = 0;  // payload bytes received (for quotas and metrics)
};

class UploadAssembler {
 public:
  explicit UploadAssembler(UploadLimits limits) : limits_(limits) {}

  // The first chunk must carry the header (validated here: shape, limits,
  // names, spatial, obs columns); every later one rows, csr, or only the
  // checksum. Errors name the field; after an error the upload is dead.
  absl::Status Add(const v1::UploadChunk& chunk);
  bool has_header() const { return has_header_; }
  // The dense size the header declares (n_obs * n_vars * 4); 0 before it.
  int64_t declared_bytes() const { return n_obs_ * n_vars_ * 4; }
  // Payload bytes received so far (what quotas reserve against).
  int64_t wire_bytes() const { return wire_bytes_; }
  // Checks row count, checksum and values, and builds the AnnData.
  absl::StatusOr<AssembledUpload> Finish();

 private:
  absl::Status AddHeader(const v1::DatasetHeader& h);
  absl::Status AddRows(const v1::RowBlock& rows);
  absl::Status AddCsr(const v1::CsrBlock& b);
  void Hash(const void* data, size_t n);

  const UploadLimits limits_;
  bool has_header_ = false;
  v1::DatasetHeader header_;
  int64_t n_obs_ = 0, n_vars_ = 0;
  std::vector<float> dense_;
  std::vector<int64_t> indptr_{0};
  std::vector<int32_t> indices_;
  std::vector<float> values_;
  int64_t rows_done_ = 0;
  int body_ = 0;  // 0 none yet, 1 dense, 2 csr
  int64_t blocks_ = 0;  // body chunks received (named in errors)
  bool crc_ = false;         // header.checksum = CHECKSUM_KIND_CRC32
  uint32_t crc32_ = 0;       // running CRC-32 (crc_)
  bool crc_sent_ = false;
  uint32_t crc_sent_value_ = 0;
  uint64_t fnv_ = 0;         // running FNV-1a 64 (legacy clients)
  uint64_t checksum_ = 0;
  int64_t wire_bytes_ = 0;
};

}  // namespace candies::server
