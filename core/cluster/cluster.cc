// Clustering an embedding into domains: k-means, mclust-style EEE Gaussian
// mixture and Leiden with a resolution search. Design notes: docs/CLUSTERING.md.
#include "core/cluster/cluster.h"

#include <igraph/igraph.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace candies {
namespace {

absl::Status ValidateInput(const torch::Tensor& x, int64_t k, const char* who) {
  if (!x.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": embedding is undefined"));
  }
  if (x.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": embedding must be N x d, got ", x.dim(), " dimensions"));
  }
  const int64_t n = x.size(0);
  if (n == 0 || x.size(1) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": embedding is empty (", n, " x ", x.size(1), ")"));
  }
  if (!x.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": embedding must be floating point"));
  }
  if (k < 1 || k > n) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": n_clusters = ", k, " must be in [1, N = ", n, "]"));
  }
  if (!torch::isfinite(x).all().item<bool>()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": embedding has non-finite values (NaN or Inf)"));
  }
  return absl::OkStatus();
}

// Relabels 0..m-1 by first appearance; returns m.
int64_t RelabelByFirstAppearance(std::vector<int32_t>* labels) {
  std::unordered_map<int32_t, int32_t> code;
  for (int32_t& l : *labels) l = code.emplace(l, static_cast<int32_t>(code.size())).first->second;
  return static_cast<int64_t>(code.size());
}

Clustering FromLabelTensor(const torch::Tensor& labels) {
  torch::Tensor cpu = labels.to(torch::kCPU, torch::kInt32).contiguous();
  Clustering out;
  out.labels.assign(cpu.data_ptr<int32_t>(), cpu.data_ptr<int32_t>() + cpu.numel());
  out.n_clusters = RelabelByFirstAppearance(&out.labels);
  return out;
}

// Squared Euclidean distances N x k (clamped at 0 against cancellation).
torch::Tensor SquaredDistances(const torch::Tensor& x, const torch::Tensor& x_sq,
                               const torch::Tensor& centers) {
  torch::Tensor c_sq = centers.pow(2).sum(1);
  return (x_sq.unsqueeze(1) - 2 * x.matmul(centers.t()) + c_sq.unsqueeze(0)).clamp_min(0);
}

// Draws an index with probability proportional to `weights` (host doubles).
int64_t SampleProportional(const std::vector<double>& cumulative, std::mt19937_64* rng) {
  const double total = cumulative.back();
  if (!(total > 0)) return std::uniform_int_distribution<int64_t>(0, cumulative.size() - 1)(*rng);
  const double u = std::uniform_real_distribution<double>(0.0, total)(*rng);
  auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  return std::min<int64_t>(it - cumulative.begin(), cumulative.size() - 1);
}

std::vector<double> Cumulative(const torch::Tensor& w) {
  torch::Tensor c = w.to(torch::kCPU, torch::kDouble).cumsum(0).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Greedy k-means++ (as sklearn): 2 + log(k) candidates per step, keep the one
// that lowers the potential most.
torch::Tensor KMeansPlusPlus(const torch::Tensor& x, const torch::Tensor& x_sq, int64_t k,
                             std::mt19937_64* rng) {
  const int64_t n = x.size(0);
  const int64_t trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  std::vector<int64_t> chosen;
  chosen.push_back(std::uniform_int_distribution<int64_t>(0, n - 1)(*rng));
  torch::Tensor closest = SquaredDistances(x, x_sq, x.index({chosen[0]}).unsqueeze(0)).squeeze(1);
  for (int64_t c = 1; c < k; ++c) {
    std::vector<double> cumulative = Cumulative(closest);
    std::vector<int64_t> candidates;
    for (int64_t t = 0; t < trials; ++t) candidates.push_back(SampleProportional(cumulative, rng));
    torch::Tensor idx = torch::tensor(candidates, torch::TensorOptions().dtype(torch::kLong))
                            .to(x.device());
    torch::Tensor d = SquaredDistances(x, x_sq, x.index_select(0, idx));  // N x trials
    torch::Tensor updated = torch::minimum(closest.unsqueeze(1), d);
    const int64_t best = updated.sum(0).argmin().item<int64_t>();
    chosen.push_back(candidates[best]);
    closest = updated.select(1, best).contiguous();
  }
  torch::Tensor idx =
      torch::tensor(chosen, torch::TensorOptions().dtype(torch::kLong)).to(x.device());
  return x.index_select(0, idx).clone();
}

struct LloydResult {
  torch::Tensor labels;
  torch::Tensor centers;
  double inertia = 0;
  int64_t iterations = 0;
};

LloydResult Lloyd(const torch::Tensor& x, const torch::Tensor& x_sq, torch::Tensor centers,
                  int64_t max_iter, double tol) {
  const int64_t k = centers.size(0);
  LloydResult r;
  torch::Tensor labels;
  for (int64_t it = 0; it < max_iter; ++it) {
    torch::Tensor d = SquaredDistances(x, x_sq, centers);
    auto [min_d, new_labels] = d.min(1);
    torch::Tensor sums = torch::zeros_like(centers).index_add_(0, new_labels, x);
    torch::Tensor counts =
        torch::zeros({k}, x.options()).index_add_(0, new_labels, torch::ones_like(min_d));
    torch::Tensor updated = sums / counts.clamp_min(1).unsqueeze(1);
    // An empty cluster moves to the point farthest from its centre (as sklearn).
    torch::Tensor empty = (counts == 0).nonzero().flatten();
    if (empty.numel() > 0) {
      torch::Tensor far = std::get<1>(min_d.topk(empty.numel()));
      updated.index_put_({empty}, x.index_select(0, far));
    }
    const double shift = (updated - centers).pow(2).sum().item<double>();
    const bool same = labels.defined() && torch::equal(labels, new_labels);
    centers = updated;
    labels = new_labels;
    r.iterations = it + 1;
    if (same || shift <= tol) break;
  }
  torch::Tensor d = SquaredDistances(x, x_sq, centers);
  auto [min_d, final_labels] = d.min(1);
  r.labels = final_labels;
  r.centers = centers;
  r.inertia = min_d.sum().item<double>();
  return r;
}

LloydResult BestKMeans(const torch::Tensor& x, int64_t k, uint64_t seed, int64_t n_init,
                       int64_t max_iter) {
  std::mt19937_64 rng(seed);
  torch::Tensor x_sq = x.pow(2).sum(1);
  // sklearn's tolerance: 1e-4 times the mean per-feature variance, on the shift.
  const double tol = 1e-4 * x.var(0, /*unbiased=*/false).mean().item<double>();
  LloydResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int64_t run = 0; run < std::max<int64_t>(1, n_init); ++run) {
    LloydResult r = Lloyd(x, x_sq, KMeansPlusPlus(x, x_sq, k, &rng), max_iter, tol);
    if (r.inertia < best.inertia) best = r;
  }
  return best;
}

std::string Describe(const std::exception& e) {
  std::string what = e.what();
  // c10::Error messages carry a long backtrace after the first line.
  return what.substr(0, what.find('\n'));
}

}  // namespace

absl::StatusOr<torch::Tensor> TopPrincipalComponents(const torch::Tensor& x, int64_t n_pcs) {
  CANDIES_RETURN_IF_ERROR(ValidateInput(x, 1, "TopPrincipalComponents"));
  if (n_pcs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("n_pcs = ", n_pcs, " must be >= 1"));
  }
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor xd = x.to(torch::kDouble);
    torch::Tensor centred = xd - xd.mean(0, /*keepdim=*/true);
    const int64_t d = x.size(1);
    const int64_t p = std::min({n_pcs, d, x.size(0)});
    // Eigenvectors of the d x d scatter matrix: cheap for N >> d and exact.
    auto [values, vectors] = torch::linalg_eigh(centred.t().matmul(centred), "L");
    torch::Tensor top = vectors.flip({1}).narrow(1, 0, p);  // eigh sorts ascending
    // Fix the sign (largest |loading| positive) so the result is reproducible.
    torch::Tensor pivot = top.abs().argmax(0);
    torch::Tensor sign = top.gather(0, pivot.unsqueeze(0)).sign();
    sign = torch::where(sign == 0, torch::ones_like(sign), sign);
    return (centred.matmul(top * sign)).to(x.scalar_type());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("PCA failed: ", Describe(e)));
  }
}

absl::StatusOr<Clustering> KMeans(const torch::Tensor& x, int64_t k, uint64_t seed,
                                  int64_t n_init, int64_t max_iter) {
  CANDIES_RETURN_IF_ERROR(ValidateInput(x, k, "kmeans"));
  if (max_iter < 1) return absl::InvalidArgumentError("kmeans: max_iter must be >= 1");
  try {
    torch::NoGradGuard no_grad;
    LloydResult best = BestKMeans(x.to(torch::kFloat).contiguous(), k, seed, n_init, max_iter);
    Clustering out = FromLabelTensor(best.labels);
    out.iterations = best.iterations;
    return out;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("kmeans failed: ", Describe(e)));
  }
}

namespace {

struct EmResult {
  torch::Tensor labels;
  double log_likelihood = -std::numeric_limits<double>::infinity();  // mean per row
  int64_t iterations = 0;
};

// EM for a k-component mixture with one shared full covariance (mclust "EEE"),
// started from hard labels. float64 throughout.
EmResult SharedCovEm(const torch::Tensor& xd, const torch::Tensor& init_labels, int64_t k,
                     int64_t max_iter, double tol) {
  const int64_t n = xd.size(0), d = xd.size(1);
  torch::Tensor resp = torch::one_hot(init_labels, k).to(torch::kDouble);
  const double log_2pi = std::log(2 * M_PI);
  const double tiny = 10 * std::numeric_limits<double>::epsilon();
  torch::Tensor eye = torch::eye(d, xd.options());
  EmResult out;
  double prev_ll = -std::numeric_limits<double>::infinity();
  for (int64_t it = 0; it < max_iter; ++it) {
    // M-step. An empty component keeps a zero mean and a ~0 weight; the tiny
    // floor keeps every quantity finite (no 0/0).
    torch::Tensor nk = resp.sum(0) + tiny;
    torch::Tensor means = resp.t().matmul(xd) / nk.unsqueeze(1);
    torch::Tensor cov = torch::zeros({d, d}, xd.options());
    for (int64_t c = 0; c < k; ++c) {
      torch::Tensor diff = xd - means.index({c});
      cov += (diff * resp.index({torch::indexing::Slice(), c}).unsqueeze(1)).t().matmul(diff);
    }
    cov /= static_cast<double>(n);
    cov = 0.5 * (cov + cov.t());
    // Regularisation 1e-6 * trace / d on the diagonal (floor for all-equal rows).
    const double reg = std::max(1e-6 * cov.trace().item<double>() / d, 1e-12);
    cov += reg * eye;
    torch::Tensor log_w = (nk / nk.sum()).log();
    // E-step in the whitened space: Mahalanobis = Euclidean after L^-1.
    torch::Tensor chol = torch::linalg_cholesky(cov);
    torch::Tensor xw = torch::linalg_solve_triangular(chol, xd.t(), /*upper=*/false,
                                                      /*left=*/true, false).t();
    torch::Tensor mw = torch::linalg_solve_triangular(chol, means.t(), false, true, false).t();
    torch::Tensor maha = torch::cdist(xw, mw).pow(2);
    const double log_det = 2 * chol.diagonal().log().sum().item<double>();
    torch::Tensor log_prob = log_w.unsqueeze(0) - 0.5 * (maha + d * log_2pi + log_det);
    torch::Tensor lse = torch::logsumexp(log_prob, 1, /*keepdim=*/true);
    resp = (log_prob - lse).exp();
    out.labels = log_prob.argmax(1);
    out.log_likelihood = lse.mean().item<double>();
    out.iterations = it + 1;
    if (std::abs(out.log_likelihood - prev_ll) < tol) break;
    prev_ll = out.log_likelihood;
  }
  return out;
}

// Rows sphered by the total covariance (so k-means sees Mahalanobis geometry).
torch::Tensor Sphere(const torch::Tensor& xd) {
  const int64_t d = xd.size(1);
  torch::Tensor centred = xd - xd.mean(0, true);
  torch::Tensor cov = centred.t().matmul(centred) / static_cast<double>(xd.size(0));
  const double reg = std::max(1e-6 * cov.trace().item<double>() / d, 1e-12);
  torch::Tensor chol = torch::linalg_cholesky(cov + reg * torch::eye(d, xd.options()));
  return torch::linalg_solve_triangular(chol, centred.t(), false, true, false).t();
}

}  // namespace

absl::StatusOr<Clustering> GaussianMixtureSharedCov(const torch::Tensor& x, int64_t k,
                                                    uint64_t seed, int64_t max_iter, double tol) {
  CANDIES_RETURN_IF_ERROR(ValidateInput(x, k, "mclust"));
  if (max_iter < 1) return absl::InvalidArgumentError("mclust: gmm_max_iter must be >= 1");
  try {
    torch::NoGradGuard no_grad;
    // EM in float64: the shared covariance is often near-singular on embeddings.
    torch::Tensor xd = x.to(torch::kDouble).contiguous();
    // mclust starts EM from model-based hierarchical agglomeration; we start it
    // twice, from k-means on the rows and from k-means on the sphered rows, and
    // keep the higher likelihood (the sphered start finds elongated clusters).
    EmResult best;
    for (const torch::Tensor& start : {xd, Sphere(xd)}) {
      LloydResult init = BestKMeans(start.to(torch::kFloat), k, seed, 10, 300);
      EmResult r = SharedCovEm(xd, init.labels, k, max_iter, tol);
      if (!best.labels.defined() || r.log_likelihood > best.log_likelihood) best = r;
    }
    Clustering result = FromLabelTensor(best.labels);
    result.iterations = best.iterations;
    return result;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("mclust failed: ", Describe(e)));
  }
}

namespace {

// Undirected kNN edges (i < j, deduplicated) on Euclidean distance, computed in
// row blocks so memory is O(block * N).
std::vector<igraph_integer_t> KnnEdges(const torch::Tensor& x, int64_t k) {
  const int64_t n = x.size(0);
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(n, 1));
  std::vector<std::pair<int64_t, int64_t>> pairs;
  pairs.reserve(n * k);
  for (int64_t start = 0; start < n; start += block) {
    const int64_t rows = std::min(block, n - start);
    torch::Tensor d = torch::cdist(x.narrow(0, start, rows), x);
    torch::Tensor self = torch::arange(
        start, start + rows, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    d.index_put_({torch::arange(rows, self.options()), self},
                 std::numeric_limits<float>::infinity());
    torch::Tensor nbr = std::get<1>(d.topk(k, 1, /*largest=*/false, /*sorted=*/true))
                            .to(torch::kCPU).contiguous();
    const int64_t* p = nbr.data_ptr<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t a = start + r, b = p[r * k + j];
        pairs.emplace_back(std::min(a, b), std::max(a, b));
      }
    }
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<igraph_integer_t> edges;
  edges.reserve(2 * pairs.size());
  for (const auto& [a, b] : pairs) {
    edges.push_back(a);
    edges.push_back(b);
  }
  return edges;
}

// igraph's RNG and error handler are process-global: one Leiden at a time.
std::mutex& IgraphMutex() {
  static std::mutex m;
  return m;
}

class IgraphGraph {
 public:
  IgraphGraph() = default;
  IgraphGraph(const IgraphGraph&) = delete;
  IgraphGraph& operator=(const IgraphGraph&) = delete;
  ~IgraphGraph() {
    if (graph_ok_) igraph_destroy(&graph_);
    if (strength_ok_) igraph_vector_destroy(&strength_);
    if (membership_ok_) igraph_vector_int_destroy(&membership_);
  }
  absl::Status Build(const std::vector<igraph_integer_t>& edges, int64_t n) {
    igraph_vector_int_t view;
    igraph_vector_int_view(&view, edges.data(), static_cast<igraph_integer_t>(edges.size()));
    if (igraph_create(&graph_, &view, n, IGRAPH_UNDIRECTED) != IGRAPH_SUCCESS) {
      return absl::InternalError("leiden: igraph_create failed");
    }
    graph_ok_ = true;
    if (igraph_vector_init(&strength_, n) != IGRAPH_SUCCESS) {
      return absl::ResourceExhaustedError("leiden: out of memory");
    }
    strength_ok_ = true;
    if (igraph_strength(&graph_, &strength_, igraph_vss_all(), IGRAPH_ALL, IGRAPH_LOOPS, nullptr) !=
        IGRAPH_SUCCESS) {
      return absl::InternalError("leiden: igraph_strength failed");
    }
    if (igraph_vector_int_init(&membership_, n) != IGRAPH_SUCCESS) {
      return absl::ResourceExhaustedError("leiden: out of memory");
    }
    membership_ok_ = true;
    total_weight_ = static_cast<double>(edges.size() / 2);
    return absl::OkStatus();
  }
  // Modularity objective as python-igraph/leidenalg: CPM with node weights =
  // degree and resolution / (2m).
  // Repeats single Leiden iterations (each refining the previous partition) until
  // the membership stops changing, at most `max_iterations` times: igraph's own
  // "until stable" (n_iterations < 0) has no cap.
  absl::StatusOr<std::vector<int32_t>> Leiden(double resolution, uint64_t seed,
                                              int64_t max_iterations) {
    const igraph_integer_t n = igraph_vcount(&graph_);
    std::vector<int32_t> labels(n, 0);
    if (total_weight_ == 0) {  // no edges: every vertex is its own community
      std::iota(labels.begin(), labels.end(), 0);
      return labels;
    }
    igraph_rng_seed(igraph_rng_default(), static_cast<igraph_uint_t>(seed));
    const double scaled = resolution / (2 * total_weight_);
    std::vector<igraph_integer_t> previous;
    for (int64_t it = 0; it < max_iterations; ++it) {
      igraph_integer_t nb = 0;
      igraph_real_t quality = 0;
      if (igraph_community_leiden(&graph_, nullptr, &strength_, scaled, /*beta=*/0.01,
                                  /*start=*/it > 0, /*n_iterations=*/1, &membership_, &nb,
                                  &quality) != IGRAPH_SUCCESS) {
        return absl::InternalError("leiden: igraph_community_leiden failed");
      }
      std::vector<igraph_integer_t> current(VECTOR(membership_), VECTOR(membership_) + n);
      const bool stable = current == previous;
      previous = std::move(current);
      if (stable) break;
    }
    for (igraph_integer_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(previous[i]);
    return labels;
  }

 private:
  igraph_t graph_;
  igraph_vector_t strength_;
  igraph_vector_int_t membership_;
  bool graph_ok_ = false, strength_ok_ = false, membership_ok_ = false;
  double total_weight_ = 0;
};

}  // namespace

absl::StatusOr<Clustering> LeidenWithResolutionSearch(const torch::Tensor& x, int64_t k,
                                                      const ClusterOptions& options) {
  CANDIES_RETURN_IF_ERROR(ValidateInput(x, k, "leiden"));
  const int64_t n = x.size(0);
  if (options.leiden_k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("leiden: leiden_k = ", options.leiden_k, " must be >= 1"));
  }
  if (!(options.resolution_min >= 0) || !(options.resolution_max > options.resolution_min)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leiden: need 0 <= resolution_min < resolution_max, got [", options.resolution_min, ", ",
        options.resolution_max, "]"));
  }
  if (options.leiden_max_iterations < 1) {
    return absl::InvalidArgumentError("leiden: leiden_max_iterations must be >= 1");
  }
  if (options.leiden_max_steps < 1) {
    return absl::InvalidArgumentError("leiden: leiden_max_steps must be >= 1");
  }
  std::vector<igraph_integer_t> edges;
  try {
    torch::NoGradGuard no_grad;
    edges = KnnEdges(x.to(torch::kFloat).contiguous(), std::min(options.leiden_k, n - 1));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("leiden: kNN graph failed: ", Describe(e)));
  }
  std::lock_guard<std::mutex> lock(IgraphMutex());
  // igraph's default handler aborts the process; report errors as codes instead.
  igraph_error_handler_t* previous = igraph_set_error_handler(igraph_error_handler_ignore);
  struct Restore {
    igraph_error_handler_t* h;
    ~Restore() { igraph_set_error_handler(h); }
  } restore{previous};
  IgraphGraph graph;
  CANDIES_RETURN_IF_ERROR(graph.Build(edges, n));
  // Bisection: the cluster count grows with the resolution.
  double lo = options.resolution_min, hi = options.resolution_max;
  Clustering best;
  int64_t best_gap = std::numeric_limits<int64_t>::max();
  for (int64_t step = 0; step < options.leiden_max_steps; ++step) {
    const double mid = 0.5 * (lo + hi);
    CANDIES_ASSIGN_OR_RETURN(std::vector<int32_t> labels,
                             graph.Leiden(mid, options.seed, options.leiden_max_iterations));
    const int64_t found = RelabelByFirstAppearance(&labels);
    const int64_t gap = std::abs(found - k);
    if (gap < best_gap) {
      best_gap = gap;
      best.labels = std::move(labels);
      best.n_clusters = found;
      best.resolution = mid;
      best.iterations = step + 1;  // resolutions tried when the best was found
    }
    if (found == k) break;
    if (found < k) lo = mid; else hi = mid;
  }
  return best;
}

absl::StatusOr<Clustering> Cluster(const torch::Tensor& embedding, const ClusterOptions& options) {
  switch (options.method) {
    case ClusterMethod::kKmeans:
      return KMeans(embedding, options.n_clusters, options.seed, options.kmeans_n_init,
                    options.kmeans_max_iter);
    case ClusterMethod::kLeiden:
      return LeidenWithResolutionSearch(embedding, options.n_clusters, options);
    case ClusterMethod::kMclust: {
      CANDIES_RETURN_IF_ERROR(ValidateInput(embedding, options.n_clusters, "mclust"));
      CANDIES_ASSIGN_OR_RETURN(torch::Tensor pcs, TopPrincipalComponents(embedding, options.n_pcs));
      return GaussianMixtureSharedCov(pcs, options.n_clusters, options.seed, options.gmm_max_iter,
                                      options.gmm_tol);
    }
  }
  return absl::InvalidArgumentError("unknown clustering method");
}

}  // namespace candies
