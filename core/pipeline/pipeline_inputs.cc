// Checking the two modalities and aligning mod2's spots to mod1's.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/metrics/metrics.h"
#include "core/pipeline/pipeline_internal.h"

namespace candies {

absl::Status CheckModality(const ModalityInput& m, const char* role) {
  if (m.adata == nullptr) return absl::InvalidArgumentError(absl::StrCat(role, ": no AnnData given"));
  const AnnData& a = *m.adata;
  if (!a.has_x || a.X.n_rows == 0 || a.X.n_cols == 0)
    return absl::InvalidArgumentError(absl::StrCat(role, " (", m.name, "): X is empty or missing"));
  if (a.X.n_rows != a.n_obs())
    return absl::InvalidArgumentError(absl::StrCat(role, " (", m.name, "): X has ", a.X.n_rows,
                                                   " rows but obs has ", a.n_obs()));
  auto it = a.obsm.find("spatial");
  if (it == a.obsm.end())
    return absl::InvalidArgumentError(
        absl::StrCat(role, " (", m.name, "): obsm[\"spatial\"] is missing (spot coordinates)"));
  if (it->second.n_rows != a.n_obs() || it->second.n_cols < 2)
    return absl::InvalidArgumentError(absl::StrCat(
        role, " (", m.name, "): obsm[\"spatial\"] must be n_obs x 2 (is ", it->second.n_rows, " x ",
        it->second.n_cols, ")"));
  // Zero variance: every stored value equal and the matrix fully dense.
  const auto& v = a.X.values;
  if (!v.empty()) {
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const bool full = a.X.nnz() == a.X.n_rows * a.X.n_cols;
    if (*lo == *hi && (full || *lo == 0.0f))
      return absl::InvalidArgumentError(
          absl::StrCat(role, " (", m.name, "): X has zero variance (every value is ", *lo, ")"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(role, " (", m.name, "): X has no non-zero value"));
  }
  return absl::OkStatus();
}

std::vector<float> Coords(const AnnData& a) {
  Matrix s = ToDense(a.obsm.at("spatial"));
  std::vector<float> out(static_cast<size_t>(2 * s.n_rows));
  for (int64_t i = 0; i < s.n_rows; ++i) {
    out[2 * i] = s.values[i * s.n_cols];
    out[2 * i + 1] = s.values[i * s.n_cols + 1];
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> MatchSpots(const AnnData& a1, const AnnData& a2) {
  const int64_t n1 = a1.n_obs(), n2 = a2.n_obs();
  std::unordered_map<std::string, int64_t> by_name;
  for (int64_t j = 0; j < n2; ++j) by_name.emplace(a2.obs.index[j], j);
  std::vector<int64_t> order(static_cast<size_t>(n1), -1);
  int64_t shared = 0;
  for (int64_t i = 0; i < n1; ++i) {
    auto it = by_name.find(a1.obs.index[i]);
    if (it != by_name.end()) { order[i] = it->second; ++shared; }
  }
  std::string how = "obs name";
  if (shared == 0) {
    how = "coordinates (no obs name is shared)";
    std::map<std::pair<float, float>, int64_t> by_xy;
    auto c2 = Coords(a2);
    for (int64_t j = 0; j < n2; ++j) by_xy.emplace(std::make_pair(c2[2 * j], c2[2 * j + 1]), j);
    auto c1 = Coords(a1);
    for (int64_t i = 0; i < n1; ++i) {
      auto it = by_xy.find({c1[2 * i], c1[2 * i + 1]});
      if (it != by_xy.end()) { order[i] = it->second; ++shared; }
    }
  }
  std::set<int64_t> used(order.begin(), order.end());
  used.erase(-1);
  if (shared != n1 || n1 != n2 || static_cast<int64_t>(used.size()) != n1) {
    std::vector<std::string> examples;
    for (int64_t i = 0; i < n1 && examples.size() < 5; ++i)
      if (order[i] < 0) examples.push_back(a1.obs.index[i]);
    return absl::InvalidArgumentError(absl::StrCat(
        "spot matching by ", how, ": ", n1 - shared, " of ", n1, " mod1 spots have no match in mod2 (",
        n2, " spots, ", n2 - static_cast<int64_t>(used.size()), " unmatched)",
        examples.empty() ? "" : absl::StrCat("; e.g. ", absl::StrJoin(examples, ", ")),
        ". Subset both modalities to the same spots first."));
  }
  return order;
}

AnnData ReorderRows(const AnnData& a, const std::vector<int64_t>& rows) {
  AnnData out;
  out.X = Subset(a.X, rows);
  out.var = a.var;
  for (int64_t r : rows) out.obs.index.push_back(a.obs.index[r]);
  out.obsm["spatial"] = Subset(a.obsm.at("spatial"), rows);
  return out;
}

absl::StatusOr<std::vector<int32_t>> TruthLabels(const AnnData& a1, const AnnData* a2,
                                                 const std::vector<int64_t>& order,
                                                 const std::string& key,
                                                 std::vector<std::string>* names) {
  const Column* col = a1.obs.Find(key);
  bool from2 = false;
  if (col == nullptr && a2 != nullptr) { col = a2->obs.Find(key); from2 = true; }
  if (col == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("labels_key: obs column \"", key, "\" is in neither modality"));
  std::vector<std::string> labels;
  for (int64_t i = 0; i < a1.n_obs(); ++i)
    labels.push_back(col->ValueAsString(from2 ? order[i] : i));
  if (names != nullptr) *names = labels;
  return metrics::EncodeLabels(labels);
}

}  // namespace candies
