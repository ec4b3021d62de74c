#include "core/analysis/domain_markers.h"

#include "absl/strings/str_cat.h"
#include "core/analysis/rank_genes_groups.h"

namespace candies {

absl::StatusOr<UnsValue> DomainMarkers(const AnnData& adata, const std::vector<int64_t>& rows,
                                       const std::vector<int32_t>& domains,
                                       const std::string& modality) {
  if (!adata.has_x || adata.X.n_cols == 0)
    return absl::InvalidArgumentError(absl::StrCat(modality, ": X is missing or empty"));
  const Matrix x = rows.empty() ? adata.X : Subset(adata.X, rows);
  if (x.n_rows != static_cast<int64_t>(domains.size()))
    return absl::InvalidArgumentError(absl::StrCat(modality, ": ", x.n_rows, " rows for ",
                                                   domains.size(), " domain labels"));
  std::vector<std::string> labels;
  labels.reserve(domains.size());
  for (int32_t d : domains) labels.push_back(std::to_string(d));
  // The same categories (and order) as the result's obs column.
  const Column groups = Column::Categorical(kDomainColumn, labels);
  bool normalized = false;
  const Matrix logx = LogNormalizeCounts(x, kMarkerTargetSum, &normalized);
  absl::StatusOr<RankGenesGroupsResult> r =
      RankGenesGroups(logx, adata.var.index, groups.codes, groups.categories, kDomainColumn);
  if (!r.ok()) return r.status();
  UnsValue u = RankGenesGroupsToUns(*r);
  UnsValue* params = u.Find("params");
  params->Set("modality", UnsValue::String(modality));
  params->Set("log_normalized", UnsValue::Bool(normalized));
  return u;
}

}  // namespace candies
