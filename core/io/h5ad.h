// Reading and writing the field's HDF5 formats: AnnData .h5ad, MuData .h5mu and
// 10x Genomics filtered_feature_bc_matrix.h5.
//
// Every function returns a Status naming the file, the element (HDF5 path) and
// the problem; none throws and none aborts on malformed input.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/anndata.h"

namespace candies {

// Named bounds on what a reader accepts from a file, checked before anything is
// allocated. A file is untrusted input: every size it declares (shape, nnz,
// string length, number of members) is checked against these limits and against
// what the file can actually hold. Defaults and reasons: docs/FORMATS.md.
struct ReadLimits {
  // Entries in one array (dataset), whatever its type.
  int64_t max_elements = int64_t{1} << 32;
  // In-memory bytes of one element (array).
  int64_t max_element_bytes = int64_t{64} << 30;
  // In-memory bytes of everything one read allocates for arrays and strings.
  int64_t max_total_bytes = int64_t{64} << 30;
  // Bytes of one string (index entry, label, category, uns value, attribute).
  int64_t max_string_bytes = int64_t{1} << 20;
  // Members of one group or names in one list attribute (dataframe columns,
  // obsm / layers / uns keys, mod-order), and links in the whole file x 16.
  int64_t max_group_members = 100000;
  // In-memory bytes per stored byte of a chunked dataset. Deflate cannot
  // exceed ~1032:1, so a larger ratio means the file declares data it does not
  // hold (unwritten chunks that HDF5 would fill with fill values).
  double max_compression_ratio = 1100.0;
};

// What a reader does; see docs/FORMATS.md.
struct ReadOptions {
  ReadLimits limits;
  // Check X, layers and obsm values for NaN / Inf and fail if any is found.
  bool reject_non_finite = true;
  // Skip `layers` / `obsp` / `varm` / `uns` (faster when only X and obs are needed).
  bool read_layers = true;
  bool read_obsp = true;
  bool read_varm = true;
  bool read_uns = true;
};

absl::StatusOr<AnnData> ReadH5ad(const std::string& path, const ReadOptions& options = {});

// Writes the current (anndata >= 0.8) encoding. The file is written to a
// temporary name beside `path` and renamed into place, so a crash never leaves a
// half-written result under the final name.
absl::Status WriteH5ad(const AnnData& adata, const std::string& path);

absl::StatusOr<MuData> ReadH5mu(const std::string& path, const ReadOptions& options = {});
absl::Status WriteH5mu(const MuData& mdata, const std::string& path);

// Reads a 10x Genomics feature-barcode matrix (HDF5, CellRanger >= 3 / Space
// Ranger) and splits it by feature_type: "Gene Expression" -> "rna",
// "Antibody Capture" -> "prot", "Peaks" -> "atac". When `tissue_positions_csv`
// is non-empty, spots found there get obsm["spatial"] (pxl_col, pxl_row) and
// spots not in tissue are dropped.
absl::StatusOr<MuData> Read10xH5(const std::string& path,
                                 const std::string& tissue_positions_csv = "",
                                 const ReadOptions& options = {});

// Checks internal consistency: X / layers / obsm / varm shapes against obs and
// var, sparse structure (monotone indptr, indices in range), unique-enough names,
// finite values. Returns InvalidArgument naming the element.
absl::Status ValidateAnnData(const AnnData& adata, const std::string& what = "AnnData");

}  // namespace candies
