// Marker features per group: the Wilcoxon rank-sum test of each group against
// the rest, as scanpy's `sc.tl.rank_genes_groups(method="wilcoxon",
// tie_correct=True)` computes it, on host matrices (no LibTorch).
//
// Per feature, all observations are ranked together (average ranks for ties);
// a group's z-score is (R - n(N+1)/2) / sqrt(T n m (N+1) / 12) with R the rank
// sum of its n observations, m = N - n and T the tie correction
// 1 - sum(t^3 - t) / (N^3 - N); p = 2 * sf(|z|) of the standard normal;
// p-values are Benjamini-Hochberg adjusted per group; the log fold change is
// log2((expm1(mean_group) + 1e-9) / (expm1(mean_rest) + 1e-9)) of log1p data.
// Features are sorted by z-score, highest first. docs/FORMATS.md describes the
// uns layout (scanpy's, so sc.get.rank_genes_groups_df and
// sc.pl.rank_genes_groups read it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/anndata.h"

namespace candies {

// Groups with fewer observations than this are an error: a rank-sum test of one
// observation against the rest says nothing (scanpy refuses them too).
inline constexpr int64_t kMinObsPerGroup = 2;

struct GroupMarkers {
  std::string group;                   // the category label
  std::vector<std::string> names;      // features, best first
  std::vector<double> scores;          // z-scores, in `names` order
  std::vector<double> pvals;
  std::vector<double> pvals_adj;       // Benjamini-Hochberg
  std::vector<double> logfoldchanges;  // log2, from log1p means
};

struct RankGenesGroupsResult {
  std::string groupby;  // the obs column the groups came from
  std::vector<GroupMarkers> groups;  // in category order
};

// `x`: n_obs x n_vars, log1p-scale values (dense, CSR or CSC). `codes[i]` is
// observation i's index into `categories` (-1: in no group, still part of
// every "rest"). Categories without observations are skipped.
absl::StatusOr<RankGenesGroupsResult> RankGenesGroups(const Matrix& x,
                                                      const std::vector<std::string>& var_names,
                                                      const std::vector<int32_t>& codes,
                                                      const std::vector<std::string>& categories,
                                                      const std::string& groupby);

// scanpy's normalize_total(target_sum) + log1p when `x` holds counts (every
// stored value a non-negative integer); otherwise `x` unchanged (taken to be
// log-normalised already). Sets *normalized to say which.
Matrix LogNormalizeCounts(const Matrix& x, double target_sum, bool* normalized);
inline constexpr double kMarkerTargetSum = 1e4;  // scanpy's usual target_sum

// uns["rank_genes_groups"] in scanpy's layout: rec-arrays names / scores /
// pvals / pvals_adj / logfoldchanges with one field per group, and params.
UnsValue RankGenesGroupsToUns(const RankGenesGroupsResult& r);
// The inverse, for the report and the pictures (top `n_top` per group; 0 = all).
absl::StatusOr<RankGenesGroupsResult> RankGenesGroupsFromUns(const UnsValue& uns,
                                                             int64_t n_top = 0);

}  // namespace candies
