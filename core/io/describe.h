// A human-readable summary of an .h5ad / .h5mu / 10x .h5 file, as printed by
// `candies inspect`. Kept in candies_io so it is testable without LibTorch.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/io/h5ad.h"

namespace candies {

// One block per modality: n_obs x n_vars, dtype, dense/csr/csc, sparsity
// (fraction of zeros) and the keys of obs/var columns, obsm, layers, obsp, uns.
std::string DescribeAnnData(const std::string& name, const AnnData& adata);

// Detects the kind by content (/mod -> MuData, /matrix -> 10x, else AnnData)
// and describes it. Errors are the readers' "<file>: <element>: <problem>".
absl::StatusOr<std::string> DescribeFile(const std::string& path,
                                         const ReadOptions& options = {});

}  // namespace candies
