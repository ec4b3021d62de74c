// Clustering metrics with scikit-learn 1.2's definitions (natural logs). See
// docs/CLUSTERING.md for the edge cases and tests/metrics/make_reference.py for
// the reference values.
#include "core/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace candies::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = std::numeric_limits<double>::epsilon();

// Dense codes 0..m-1 in order of first appearance.
std::vector<int32_t> Densify(const std::vector<int32_t>& labels, int64_t* n_codes) {
  std::unordered_map<int32_t, int32_t> code;
  std::vector<int32_t> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    auto it = code.emplace(labels[i], static_cast<int32_t>(code.size())).first;
    out[i] = it->second;
  }
  *n_codes = static_cast<int64_t>(code.size());
  return out;
}

// Sparse contingency table: rows = truth classes, columns = predicted clusters.
struct Contingency {
  int64_t n = 0;
  std::vector<int64_t> a;  // row sums (class sizes)
  std::vector<int64_t> b;  // column sums (cluster sizes)
  struct Cell {
    int32_t i, j;
    int64_t count;
  };
  std::vector<Cell> cells;  // non-zero cells only
};

Contingency MakeContingency(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  Contingency c;
  int64_t r = 0, k = 0;
  std::vector<int32_t> t = Densify(truth, &r);
  std::vector<int32_t> p = Densify(pred, &k);
  c.n = static_cast<int64_t>(t.size());
  c.a.assign(r, 0);
  c.b.assign(k, 0);
  std::unordered_map<int64_t, int64_t> cell;
  for (size_t s = 0; s < t.size(); ++s) {
    ++c.a[t[s]];
    ++c.b[p[s]];
    ++cell[static_cast<int64_t>(t[s]) * k + p[s]];
  }
  c.cells.reserve(cell.size());
  for (const auto& [key, count] : cell) {
    c.cells.push_back({static_cast<int32_t>(key / k), static_cast<int32_t>(key % k), count});
  }
  // Deterministic summation order regardless of hash iteration order.
  std::sort(c.cells.begin(), c.cells.end(), [](const Contingency::Cell& x,
                                               const Contingency::Cell& y) {
    return x.i != y.i ? x.i < y.i : x.j < y.j;
  });
  return c;
}

// sklearn.metrics.cluster.entropy of a partition given its part sizes.
double Entropy(const std::vector<int64_t>& sizes, int64_t n) {
  if (n == 0) return 1.0;
  int64_t parts = 0;
  for (int64_t s : sizes) parts += s > 0;
  if (parts <= 1) return 0.0;
  const double log_n = std::log(static_cast<double>(n));
  double h = 0;
  for (int64_t s : sizes) {
    if (s > 0) h -= (static_cast<double>(s) / n) * (std::log(static_cast<double>(s)) - log_n);
  }
  return h;
}

// sklearn's mutual_info_score on a contingency table.
double MutualInfo(const Contingency& c) {
  if (c.a.size() == 1 || c.b.size() == 1) return 0.0;
  if (c.n == 0) return 0.0;
  const double n = static_cast<double>(c.n);
  const double log_n = std::log(n);
  double mi = 0;
  for (const auto& cell : c.cells) {
    const double p = cell.count / n;
    const double outer = static_cast<double>(c.a[cell.i]) * static_cast<double>(c.b[cell.j]);
    double term = p * (std::log(static_cast<double>(cell.count)) - log_n) +
                  p * (-std::log(outer) + 2 * log_n);
    if (std::abs(term) < kEps) term = 0;
    mi += term;
  }
  return std::max(mi, 0.0);
}

// sklearn's expected_mutual_information (exact, hypergeometric model).
double ExpectedMutualInfo(const Contingency& c) {
  if (c.a.size() == 1 || c.b.size() == 1) return 0.0;
  const int64_t n = c.n;
  const double nd = static_cast<double>(n);
  const double log_n = std::log(nd);
  const double gln_n1 = std::lgamma(nd + 1);
  double emi = 0;
  for (int64_t ai : c.a) {
    const double ad = static_cast<double>(ai);
    const double gln_a = std::lgamma(ad + 1) + std::lgamma(nd - ad + 1);
    for (int64_t bj : c.b) {
      const double bd = static_cast<double>(bj);
      const double base = gln_a + std::lgamma(bd + 1) + std::lgamma(nd - bd + 1) - gln_n1;
      const int64_t start = std::max<int64_t>(1, ai - n + bj);
      const int64_t end = std::min(ai, bj);
      for (int64_t nij = start; nij <= end; ++nij) {
        const double x = static_cast<double>(nij);
        const double term2 = log_n + std::log(x) - std::log(ad) - std::log(bd);
        const double gln = base - std::lgamma(x + 1) - std::lgamma(ad - x + 1) -
                           std::lgamma(bd - x + 1) - std::lgamma(nd - ad - bd + x + 1);
        emi += (x / nd) * term2 * std::exp(gln);
      }
    }
  }
  return emi;
}

bool SameLength(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  return truth.size() == pred.size();
}

// Unsupervised metrics need 2 <= clusters <= n - 1 (sklearn raises otherwise).
bool ValidUnsupervised(const std::vector<float>& x, int64_t n, int64_t d,
                       const std::vector<int32_t>& labels, int64_t* n_labels) {
  if (n < 2 || d < 1 || static_cast<int64_t>(x.size()) != n * d ||
      static_cast<int64_t>(labels.size()) != n) {
    return false;
  }
  Densify(labels, n_labels);
  return *n_labels >= 2 && *n_labels <= n - 1;
}

double Distance(const float* u, const float* v, int64_t d) {
  double s = 0;
  for (int64_t t = 0; t < d; ++t) {
    const double diff = static_cast<double>(u[t]) - static_cast<double>(v[t]);
    s += diff * diff;
  }
  return std::sqrt(s);
}

int NumWorkers(int64_t rows) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(hw, rows / 256)));
}

}  // namespace

double AdjustedRandIndex(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  const Contingency c = MakeContingency(truth, pred);
  const double n = static_cast<double>(c.n);
  double sum_sq = 0, row = 0, col = 0;
  for (const auto& cell : c.cells) {
    const double v = static_cast<double>(cell.count);
    sum_sq += v * v;
    row += v * static_cast<double>(c.b[cell.j]);
    col += v * static_cast<double>(c.a[cell.i]);
  }
  // sklearn's pair_confusion_matrix (ordered pairs).
  const double tp = sum_sq - n;
  const double fp = row - sum_sq;
  const double fn = col - sum_sq;
  const double tn = n * n - fp - fn - sum_sq;
  if (fn == 0 && fp == 0) return 1.0;
  return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
}

double MutualInformation(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred) || truth.empty()) return kNaN;  // sklearn raises on empty
  return MutualInfo(MakeContingency(truth, pred));
}

double NormalizedMutualInformation(const std::vector<int32_t>& truth,
                                   const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  const Contingency c = MakeContingency(truth, pred);
  if (c.a.size() == c.b.size() && c.a.size() <= 1) return 1.0;
  const double mi = MutualInfo(c);
  if (mi == 0) return 0.0;
  const double norm = 0.5 * (Entropy(c.a, c.n) + Entropy(c.b, c.n));
  return mi / norm;
}

double AdjustedMutualInformation(const std::vector<int32_t>& truth,
                                 const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  const Contingency c = MakeContingency(truth, pred);
  if (c.a.size() == c.b.size() && c.a.size() <= 1) return 1.0;
  const double mi = MutualInfo(c);
  const double emi = ExpectedMutualInfo(c);
  const double norm = 0.5 * (Entropy(c.a, c.n) + Entropy(c.b, c.n));
  double denominator = norm - emi;
  // As sklearn: keep the sign, avoid 0/0 for a perfect match.
  denominator = denominator < 0 ? std::min(denominator, -kEps) : std::max(denominator, kEps);
  return (mi - emi) / denominator;
}

double Homogeneity(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  if (truth.empty()) return 1.0;
  const Contingency c = MakeContingency(truth, pred);
  const double h = Entropy(c.a, c.n);
  return h != 0 ? MutualInfo(c) / h : 1.0;
}

double Completeness(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  if (truth.empty()) return 1.0;
  const Contingency c = MakeContingency(truth, pred);
  const double h = Entropy(c.b, c.n);
  return h != 0 ? MutualInfo(c) / h : 1.0;
}

double VMeasure(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  const double h = Homogeneity(truth, pred);
  const double c = Completeness(truth, pred);
  if (h + c == 0.0) return 0.0;
  return 2 * h * c / (h + c);
}

double FowlkesMallows(const std::vector<int32_t>& truth, const std::vector<int32_t>& pred) {
  if (!SameLength(truth, pred)) return kNaN;
  const Contingency c = MakeContingency(truth, pred);
  const double n = static_cast<double>(c.n);
  double tk = -n, pk = -n, qk = -n;
  for (const auto& cell : c.cells) tk += static_cast<double>(cell.count) * cell.count;
  for (int64_t v : c.b) pk += static_cast<double>(v) * v;
  for (int64_t v : c.a) qk += static_cast<double>(v) * v;
  if (tk == 0) return 0.0;
  return std::sqrt(tk / pk) * std::sqrt(tk / qk);
}

double Silhouette(const std::vector<float>& x, int64_t n, int64_t d,
                  const std::vector<int32_t>& labels) {
  return Silhouette(x, n, d, labels, SilhouetteOptions{});
}

double Silhouette(const std::vector<float>& x, int64_t n, int64_t d,
                  const std::vector<int32_t>& labels, const SilhouetteOptions& options) {
  int64_t k = 0;
  if (!ValidUnsupervised(x, n, d, labels, &k)) return kNaN;
  std::vector<int32_t> code = Densify(labels, &k);
  // Rows scored: all of them, or a seeded sample (distances still go to every row).
  std::vector<int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  if (options.sample_size > 0 && options.sample_size < n) {
    std::mt19937_64 rng(options.seed);
    std::shuffle(rows.begin(), rows.end(), rng);
    rows.resize(options.sample_size);
    std::sort(rows.begin(), rows.end());
  }
  std::vector<int64_t> size(k, 0);
  for (int32_t c : code) ++size[c];
  std::vector<double> score(rows.size(), 0.0);
  const int workers = NumWorkers(static_cast<int64_t>(rows.size()));
  auto work = [&](int w) {
    std::vector<double> sum(k);
    for (size_t r = w; r < rows.size(); r += workers) {
      const int64_t i = rows[r];
      std::fill(sum.begin(), sum.end(), 0.0);
      const float* xi = x.data() + i * d;
      for (int64_t j = 0; j < n; ++j) {
        if (j != i) sum[code[j]] += Distance(xi, x.data() + j * d, d);
      }
      const int32_t own = code[i];
      if (size[own] <= 1) continue;  // singleton: s = 0 as in sklearn
      const double a = sum[own] / static_cast<double>(size[own] - 1);
      double b = std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < k; ++c) {
        if (c != own) b = std::min(b, sum[c] / static_cast<double>(size[c]));
      }
      const double m = std::max(a, b);
      score[r] = m > 0 ? (b - a) / m : 0.0;
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  double total = 0;
  for (double s : score) total += s;
  return total / static_cast<double>(score.size());
}

namespace {
std::vector<double> Centroids(const std::vector<float>& x, int64_t n, int64_t d,
                              const std::vector<int32_t>& code, int64_t k,
                              std::vector<int64_t>* size) {
  std::vector<double> mean(k * d, 0.0);
  size->assign(k, 0);
  for (int64_t i = 0; i < n; ++i) {
    ++(*size)[code[i]];
    for (int64_t t = 0; t < d; ++t) mean[code[i] * d + t] += x[i * d + t];
  }
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t t = 0; t < d; ++t) mean[c * d + t] /= static_cast<double>((*size)[c]);
  }
  return mean;
}
}  // namespace

double DaviesBouldin(const std::vector<float>& x, int64_t n, int64_t d,
                     const std::vector<int32_t>& labels) {
  int64_t k = 0;
  if (!ValidUnsupervised(x, n, d, labels, &k)) return kNaN;
  std::vector<int32_t> code = Densify(labels, &k);
  std::vector<int64_t> size;
  std::vector<double> mean = Centroids(x, n, d, code, k, &size);
  std::vector<double> intra(k, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) {
      const double diff = x[i * d + t] - mean[code[i] * d + t];
      s += diff * diff;
    }
    intra[code[i]] += std::sqrt(s);
  }
  bool intra_zero = true, centroid_zero = true;
  for (int64_t c = 0; c < k; ++c) {
    intra[c] /= static_cast<double>(size[c]);
    intra_zero = intra_zero && std::abs(intra[c]) <= 1e-8;  // np.allclose(., 0)
  }
  std::vector<double> dist(k * k, 0.0);
  for (int64_t p = 0; p < k; ++p) {
    for (int64_t q = 0; q < k; ++q) {
      double s = 0;
      for (int64_t t = 0; t < d; ++t) {
        const double diff = mean[p * d + t] - mean[q * d + t];
        s += diff * diff;
      }
      dist[p * k + q] = std::sqrt(s);
      centroid_zero = centroid_zero && dist[p * k + q] <= 1e-8;
    }
  }
  if (intra_zero || centroid_zero) return 0.0;
  double total = 0;
  for (int64_t p = 0; p < k; ++p) {
    double best = -std::numeric_limits<double>::infinity();
    for (int64_t q = 0; q < k; ++q) {
      const double dpq = dist[p * k + q] == 0 ? std::numeric_limits<double>::infinity()
                                              : dist[p * k + q];
      best = std::max(best, (intra[p] + intra[q]) / dpq);
    }
    total += best;
  }
  return total / static_cast<double>(k);
}

double CalinskiHarabasz(const std::vector<float>& x, int64_t n, int64_t d,
                        const std::vector<int32_t>& labels) {
  int64_t k = 0;
  if (!ValidUnsupervised(x, n, d, labels, &k)) return kNaN;
  std::vector<int32_t> code = Densify(labels, &k);
  std::vector<int64_t> size;
  std::vector<double> mean = Centroids(x, n, d, code, k, &size);
  std::vector<double> grand(d, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < d; ++t) grand[t] += x[i * d + t];
  }
  for (double& g : grand) g /= static_cast<double>(n);
  double extra = 0, intra = 0;
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t t = 0; t < d; ++t) {
      const double diff = mean[c * d + t] - grand[t];
      extra += static_cast<double>(size[c]) * diff * diff;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < d; ++t) {
      const double diff = x[i * d + t] - mean[code[i] * d + t];
      intra += diff * diff;
    }
  }
  if (intra == 0) return 1.0;
  return extra * static_cast<double>(n - k) / (intra * static_cast<double>(k - 1));
}

double MoransI(const std::vector<double>& y, const std::vector<int64_t>& neighbors, int64_t k) {
  const int64_t n = static_cast<int64_t>(y.size());
  if (n < 2 || k < 1 || static_cast<int64_t>(neighbors.size()) != n * k) return kNaN;
  double mean = 0;
  for (double v : y) mean += v;
  mean /= static_cast<double>(n);
  double zz = 0;
  for (double v : y) zz += (v - mean) * (v - mean);
  if (zz == 0) return kNaN;  // constant variable: I is undefined (esda gives nan)
  // Row-standardised weights: each valid neighbour of i weighs 1 / (its count).
  double s0 = 0, zwz = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t valid = 0;
    double lag = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t nb = neighbors[i * k + j];
      if (nb < 0 || nb >= n) continue;  // padding / missing neighbour
      ++valid;
      lag += y[nb] - mean;
    }
    if (valid == 0) continue;  // island: a zero row, as in esda
    s0 += 1.0;
    zwz += (y[i] - mean) * lag / static_cast<double>(valid);
  }
  if (s0 == 0) return kNaN;
  return static_cast<double>(n) / s0 * zwz / zz;
}

double MoransIOfLabels(const std::vector<int32_t>& labels, const std::vector<int64_t>& neighbors,
                       int64_t k) {
  int64_t n_codes = 0;
  std::vector<int32_t> code = Densify(labels, &n_codes);
  double total = 0;
  int64_t scored = 0;
  std::vector<double> indicator(labels.size());
  for (int64_t c = 0; c < n_codes; ++c) {
    for (size_t i = 0; i < code.size(); ++i) indicator[i] = code[i] == c ? 1.0 : 0.0;
    const double value = MoransI(indicator, neighbors, k);
    if (std::isnan(value)) continue;  // constant indicator (one cluster covers all)
    total += value;
    ++scored;
  }
  return scored > 0 ? total / static_cast<double>(scored) : kNaN;
}

std::vector<std::pair<std::string, double>> SupervisedReport(const std::vector<int32_t>& truth,
                                                             const std::vector<int32_t>& pred) {
  return {{"ARI", AdjustedRandIndex(truth, pred)},
          {"NMI", NormalizedMutualInformation(truth, pred)},
          {"AMI", AdjustedMutualInformation(truth, pred)},
          {"MI", MutualInformation(truth, pred)},
          {"homogeneity", Homogeneity(truth, pred)},
          {"completeness", Completeness(truth, pred)},
          {"v_measure", VMeasure(truth, pred)},
          {"FMI", FowlkesMallows(truth, pred)}};
}

std::vector<int32_t> EncodeLabels(const std::vector<std::string>& labels) {
  std::unordered_map<std::string, int32_t> code;
  std::vector<int32_t> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    out[i] = code.emplace(labels[i], static_cast<int32_t>(code.size())).first->second;
  }
  return out;
}

}  // namespace candies::metrics
