// Marker features of the domains a job found, for uns["rank_genes_groups"]:
// picks the modality to rank, log-normalises counts as scanpy would, runs
// RankGenesGroups (rank_genes_groups.h) with the domains as groups.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/anndata.h"

namespace candies {

// The obs column of the result that holds the domains (ResultToAnnData).
inline constexpr char kDomainColumn[] = "candies_cluster";

// `adata`'s X ranked by `domains` (0-based, one per spot in result order);
// `rows[i]` is the row of `adata` for result spot i (empty: the same order).
// The uns map has scanpy's layout plus params.modality = `modality` and
// params.log_normalized (whether counts were normalised here).
absl::StatusOr<UnsValue> DomainMarkers(const AnnData& adata, const std::vector<int64_t>& rows,
                                       const std::vector<int32_t>& domains,
                                       const std::string& modality);

}  // namespace candies
