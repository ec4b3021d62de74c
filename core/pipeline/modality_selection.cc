#include "core/pipeline/modality_selection.h"

#include <algorithm>

#include <torch/torch.h>

#include "core/metrics/metrics.h"
#include "core/util/status_macros.h"

namespace candies {
namespace {

absl::StatusOr<std::vector<int32_t>> ClusterForSelection(const torch::Tensor& z,
                                                         const ClusterOptions& cluster,
                                                         ClusterMethod method) {
  ClusterOptions o = cluster;
  o.method = method;
  auto first = Cluster(z, o);
  if (first.ok() && first->n_clusters == cluster.n_clusters) return first->labels;
  if (method == cluster.method && first.ok()) return first->labels;
  CANDIES_ASSIGN_OR_RETURN(auto fallback, Cluster(z, cluster));
  return fallback.labels;
}

double Unit(double v, double lo, double hi) {
  return std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
}

double UnsupervisedScore(const torch::Tensor& z, const std::vector<int32_t>& labels,
                         const std::vector<int64_t>& nbrs, int64_t k,
                         const QualityScoreRanges& r) {
  auto zc = z.to(torch::kCPU, torch::kFloat32).contiguous();
  const int64_t n = zc.size(0), d = zc.size(1);
  std::vector<float> x(zc.data_ptr<float>(), zc.data_ptr<float>() + n * d);
  const double sil = metrics::Silhouette(x, n, d, labels);
  const double db = metrics::DaviesBouldin(x, n, d, labels);
  const double ch = metrics::CalinskiHarabasz(x, n, d, labels);
  const double moran = metrics::MoransIOfLabels(labels, nbrs, k);
  return (Unit(sil, r.silhouette_min, r.silhouette_max) + (1.0 - Unit(db, r.db_min, r.db_max)) +
          Unit(ch, r.ch_min, r.ch_max) + Unit(moran, r.moran_min, r.moran_max)) /
         4.0;
}

}  // namespace

absl::StatusOr<ModalityScores> SelectLowQuality(const torch::Tensor& z1, const torch::Tensor& z2,
                                                const ClusterOptions& cluster,
                                                ClusterMethod selection_method,
                                                const std::vector<int32_t>& truth,
                                                const std::vector<int64_t>& spatial_neighbors,
                                                int64_t spatial_k,
                                                const QualityScoreRanges& ranges) {
  ModalityScores s;
  CANDIES_ASSIGN_OR_RETURN(s.labels1, ClusterForSelection(z1, cluster, selection_method));
  CANDIES_ASSIGN_OR_RETURN(s.labels2, ClusterForSelection(z2, cluster, selection_method));
  if (!truth.empty()) {
    s.supervised = true;
    s.score1 = metrics::AdjustedRandIndex(truth, s.labels1);
    s.score2 = metrics::AdjustedRandIndex(truth, s.labels2);
  } else {
    s.score1 = UnsupervisedScore(z1, s.labels1, spatial_neighbors, spatial_k, ranges);
    s.score2 = UnsupervisedScore(z2, s.labels2, spatial_neighbors, spatial_k, ranges);
  }
  s.low = s.score1 < s.score2 ? 1 : 2;
  return s;
}

}  // namespace candies
