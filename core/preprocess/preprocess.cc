#include "core/preprocess/preprocess.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/preprocess/randomized_svd.h"
#include "core/util/status_macros.h"

namespace candies {
namespace {

// log1p extended to negative inputs as sign(x) * log1p(|x|): equal to log1p on
// counts, finite and monotone on the negative values that upstream processing
// (or the benchmark's additive noise) produces. See docs/PREPROCESSING.md.
inline float SignedLog1p(float v) {
  return v >= 0 ? std::log1p(v) : -std::log1p(-v);
}

// Per-column count of entries > 0 and column sums, for any layout.
void ColumnStats(const Matrix& m, std::vector<int64_t>* positive, std::vector<double>* sums) {
  positive->assign(m.n_cols, 0);
  sums->assign(m.n_cols, 0.0);
  if (m.format == Matrix::Format::kDense) {
    for (int64_t r = 0; r < m.n_rows; ++r) {
      const float* row = m.values.data() + r * m.n_cols;
      for (int64_t c = 0; c < m.n_cols; ++c) {
        (*sums)[c] += row[c];
        (*positive)[c] += row[c] > 0;
      }
    }
    return;
  }
  const bool csr = m.format == Matrix::Format::kCsr;
  const int64_t n_major = csr ? m.n_rows : m.n_cols;
  for (int64_t i = 0; i < n_major; ++i) {
    for (int64_t p = m.indptr[i]; p < m.indptr[i + 1]; ++p) {
      const int64_t c = csr ? m.indices[p] : i;
      (*sums)[c] += m.values[p];
      (*positive)[c] += m.values[p] > 0;
    }
  }
}

std::vector<double> RowSums(const Matrix& m) {
  std::vector<double> sums(m.n_rows, 0.0);
  if (m.format == Matrix::Format::kDense) {
    for (int64_t r = 0; r < m.n_rows; ++r) {
      const float* row = m.values.data() + r * m.n_cols;
      sums[r] = std::accumulate(row, row + m.n_cols, 0.0);
    }
  } else if (m.format == Matrix::Format::kCsr) {
    for (int64_t r = 0; r < m.n_rows; ++r) {
      for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) sums[r] += m.values[p];
    }
  } else {
    for (size_t p = 0; p < m.values.size(); ++p) sums[m.indices[p]] += m.values[p];
  }
  return sums;
}

// Multiplies every stored entry of row r by factor[r].
void ScaleRows(Matrix& m, const std::vector<double>& factor) {
  if (m.format == Matrix::Format::kDense) {
    for (int64_t r = 0; r < m.n_rows; ++r) {
      float* row = m.values.data() + r * m.n_cols;
      for (int64_t c = 0; c < m.n_cols; ++c) row[c] = static_cast<float>(row[c] * factor[r]);
    }
  } else if (m.format == Matrix::Format::kCsr) {
    for (int64_t r = 0; r < m.n_rows; ++r) {
      for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) {
        m.values[p] = static_cast<float>(m.values[p] * factor[r]);
      }
    }
  } else {
    for (size_t p = 0; p < m.values.size(); ++p) {
      m.values[p] = static_cast<float>(m.values[p] * factor[m.indices[p]]);
    }
  }
}

Column SubsetColumn(const Column& c, const std::vector<int64_t>& rows) {
  Column out = c;
  auto pick = [&rows](auto& v) {
    std::remove_reference_t<decltype(v)> kept;
    kept.reserve(rows.size());
    for (int64_t r : rows) kept.push_back(v[r]);
    v = std::move(kept);
  };
  switch (c.kind) {
    case Column::Kind::kFloat: pick(out.floats); break;
    case Column::Kind::kInt: pick(out.ints); break;
    case Column::Kind::kBool: pick(out.bools); break;
    case Column::Kind::kString: pick(out.strings); break;
    case Column::Kind::kCategorical: pick(out.codes); break;
  }
  return out;
}

DataFrame SubsetRows(const DataFrame& df, const std::vector<int64_t>& rows) {
  DataFrame out;
  out.index_name = df.index_name;
  out.index.reserve(rows.size());
  for (int64_t r : rows) out.index.push_back(df.index[r]);
  for (const Column& c : df.columns) out.columns.push_back(SubsetColumn(c, rows));
  return out;
}

absl::Status CheckFinite(const Matrix& m, const std::string& what) {
  for (float v : m.values) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": X contains NaN or Inf"));
    }
  }
  return absl::OkStatus();
}

// Weighted quadratic local regression (LOESS, degree 2, tricube weights) of y on
// x, evaluated at every x: for each point the `q` nearest x values form a
// contiguous window of the sorted x, found by sliding it.
std::vector<double> Loess(const std::vector<double>& x, const std::vector<double>& y,
                          double span) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return x[a] < x[b]; });
  std::vector<double> xs(n), ys(n);
  for (int64_t i = 0; i < n; ++i) {
    xs[i] = x[order[i]];
    ys[i] = y[order[i]];
  }
  const int64_t q = std::clamp<int64_t>(static_cast<int64_t>(std::floor(span * n)), 3, n);
  std::vector<double> fit_sorted(n);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    int64_t lo = 0;
    for (int64_t i = begin; i < end; ++i) {
      // Slide the window [lo, lo + q) while moving right brings it closer to xs[i].
      lo = std::clamp<int64_t>(lo, 0, n - q);
      while (lo + q < n && xs[i] - xs[lo] > xs[lo + q] - xs[i]) ++lo;
      while (lo > 0 && xs[lo + q - 1] - xs[i] > xs[i] - xs[lo - 1]) --lo;
      const double dmax =
          std::max(xs[i] - xs[lo], xs[lo + q - 1] - xs[i]) * (q < n ? 1.0 : 1.0 + 1e-9);
      // Normal equations of the weighted fit y ~ b0 + b1 u + b2 u^2, u = x - x_i.
      double s[5] = {0, 0, 0, 0, 0}, t[3] = {0, 0, 0};
      for (int64_t j = lo; j < lo + q; ++j) {
        const double u = xs[j] - xs[i];
        double w = 1.0;
        if (dmax > 0) {
          const double d = std::min(std::abs(u) / dmax, 1.0);
          w = std::pow(1.0 - d * d * d, 3);
        }
        double p = w;
        for (int k = 0; k < 5; ++k) {
          s[k] += p;
          if (k < 3) t[k] += p * ys[j];
          p *= u;
        }
      }
      // Solve the 3x3 system [s0 s1 s2; s1 s2 s3; s2 s3 s4] b = t by Cramer's rule;
      // fall back to the local linear / weighted mean fit when it is singular.
      auto det3 = [](double a, double b, double c, double d, double e, double f, double g,
                     double h, double k) {
        return a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g);
      };
      const double det = det3(s[0], s[1], s[2], s[1], s[2], s[3], s[2], s[3], s[4]);
      double b0;
      if (std::abs(det) > 1e-12 * std::max(1.0, std::abs(s[0] * s[2] * s[4]))) {
        b0 = det3(t[0], s[1], s[2], t[1], s[2], s[3], t[2], s[3], s[4]) / det;
      } else {
        const double det2 = s[0] * s[2] - s[1] * s[1];
        b0 = std::abs(det2) > 1e-12 ? (t[0] * s[2] - s[1] * t[1]) / det2 : t[0] / s[0];
      }
      fit_sorted[i] = b0;
    }
  });
  std::vector<double> fit(n);
  for (int64_t i = 0; i < n; ++i) fit[order[i]] = fit_sorted[i];
  return fit;
}

}  // namespace

torch::Tensor MatrixToTensor(const Matrix& m) {
  if (m.format == Matrix::Format::kDense) {
    return torch::from_blob(const_cast<float*>(m.values.data()), {m.n_rows, m.n_cols},
                            torch::kFloat32)
        .clone();
  }
  torch::Tensor out = torch::zeros({m.n_rows, m.n_cols}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  const bool csr = m.format == Matrix::Format::kCsr;
  const int64_t n_major = csr ? m.n_rows : m.n_cols;
  for (int64_t i = 0; i < n_major; ++i) {
    for (int64_t p = m.indptr[i]; p < m.indptr[i + 1]; ++p) {
      const int64_t r = csr ? i : m.indices[p];
      const int64_t c = csr ? m.indices[p] : i;
      o[r * m.n_cols + c] = m.values[p];
    }
  }
  return out;
}

Matrix TensorToMatrix(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const int64_t rows = c.size(0), cols = c.dim() > 1 ? c.size(1) : 1;
  const float* p = c.data_ptr<float>();
  return Matrix::Dense(rows, cols, std::vector<float>(p, p + rows * cols));
}

namespace pp {

absl::StatusOr<std::vector<int64_t>> FilterGenes(AnnData& adata, int64_t min_cells,
                                                 double min_counts) {
  if (!adata.has_x) return absl::InvalidArgumentError("filter_genes: X is missing");
  std::vector<int64_t> positive;
  std::vector<double> sums;
  ColumnStats(adata.X, &positive, &sums);
  std::vector<int64_t> kept;
  for (int64_t c = 0; c < adata.X.n_cols; ++c) {
    if (positive[c] >= min_cells && sums[c] >= min_counts) kept.push_back(c);
  }
  if (static_cast<int64_t>(kept.size()) == adata.X.n_cols) return kept;
  std::vector<int64_t> all_rows(adata.X.n_rows);
  std::iota(all_rows.begin(), all_rows.end(), 0);
  // Subset keeps CSR as CSR; a CSC input becomes CSR, which every later step uses.
  adata.X = Subset(adata.X, all_rows, kept);
  for (auto& [name, layer] : adata.layers) layer = Subset(layer, all_rows, kept);
  for (auto& [name, m] : adata.varm) m = Subset(m, kept);
  adata.var = SubsetRows(adata.var, kept);
  return kept;
}

absl::Status NormalizeTotal(Matrix& X, double target_sum) {
  std::vector<double> totals = RowSums(X);
  if (target_sum <= 0) {
    std::vector<double> positive;
    for (double t : totals) {
      if (t > 0) positive.push_back(t);
    }
    if (positive.empty()) {
      return absl::InvalidArgumentError("normalize_total: every row sums to zero or less");
    }
    std::nth_element(positive.begin(), positive.begin() + positive.size() / 2, positive.end());
    target_sum = positive[positive.size() / 2];
  }
  // Rows whose total is not positive are left as they are (scaling would flip
  // signs or divide by zero).
  std::vector<double> factor(totals.size());
  for (size_t r = 0; r < totals.size(); ++r) factor[r] = totals[r] > 0 ? target_sum / totals[r] : 1.0;
  ScaleRows(X, factor);
  return absl::OkStatus();
}

void Log1p(Matrix& X) {
  for (float& v : X.values) v = SignedLog1p(v);
}

absl::StatusOr<std::vector<int64_t>> HighlyVariableGenesSeuratV3(const Matrix& counts,
                                                                 int64_t n_top_genes,
                                                                 double span) {
  const int64_t n = counts.n_rows, g = counts.n_cols;
  if (n < 2) return absl::InvalidArgumentError("highly_variable_genes: need at least 2 spots");
  if (n_top_genes < 1) {
    return absl::InvalidArgumentError("highly_variable_genes: n_top_genes must be >= 1");
  }
  n_top_genes = std::min(n_top_genes, g);
  const Matrix csr = ToCsr(counts);
  std::vector<double> mean(g, 0.0), sq(g, 0.0);
  for (size_t p = 0; p < csr.values.size(); ++p) {
    mean[csr.indices[p]] += csr.values[p];
    sq[csr.indices[p]] += static_cast<double>(csr.values[p]) * csr.values[p];
  }
  std::vector<double> var(g);
  for (int64_t j = 0; j < g; ++j) {
    mean[j] /= n;
    var[j] = std::max(0.0, (sq[j] - n * mean[j] * mean[j]) / (n - 1));
  }
  // Fit log10(variance) ~ log10(mean) over genes with a positive mean and variance
  // (log10 is undefined otherwise); the others get normalised variance 0.
  std::vector<int64_t> fitted;
  std::vector<double> lx, ly;
  for (int64_t j = 0; j < g; ++j) {
    if (var[j] > 0 && mean[j] > 0) {
      fitted.push_back(j);
      lx.push_back(std::log10(mean[j]));
      ly.push_back(std::log10(var[j]));
    }
  }
  std::vector<double> norm_var(g, 0.0);
  if (static_cast<int64_t>(fitted.size()) >= 3) {
    const std::vector<double> fit = Loess(lx, ly, span);
    std::vector<double> reg_std(g, 0.0), clip(g, 0.0);
    for (size_t k = 0; k < fitted.size(); ++k) {
      const int64_t j = fitted[k];
      reg_std[j] = std::sqrt(std::pow(10.0, fit[k]));
      clip[j] = mean[j] + reg_std[j] * std::sqrt(static_cast<double>(n));
    }
    // Sum of clipped values and their squares; zeros contribute nothing.
    std::vector<double> s1(g, 0.0), s2(g, 0.0);
    for (size_t p = 0; p < csr.values.size(); ++p) {
      const int32_t j = csr.indices[p];
      const double v = std::min<double>(csr.values[p], clip[j]);
      s1[j] += v;
      s2[j] += v * v;
    }
    for (int64_t j : fitted) {
      norm_var[j] = (n * mean[j] * mean[j] + s2[j] - 2 * mean[j] * s1[j]) /
                    ((n - 1) * reg_std[j] * reg_std[j]);
    }
  }
  std::vector<int64_t> order(g);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return norm_var[a] > norm_var[b]; });
  order.resize(n_top_genes);
  std::sort(order.begin(), order.end());
  return order;
}

torch::Tensor Scale(const torch::Tensor& X, double max_value) {
  torch::Tensor x = X.to(torch::kFloat32);
  const int64_t n = x.size(0);
  torch::Tensor mean = x.mean(0, true);
  // Sample standard deviation (ddof = 1) as scanpy's scale; constant columns
  // get std 1 so they become 0 after centring.
  torch::Tensor std = n > 1 ? x.std(0, /*unbiased=*/true, /*keepdim=*/true)
                            : torch::ones_like(mean);
  std = torch::where(std > 0, std, torch::ones_like(std));
  torch::Tensor out = (x - mean) / std;
  if (max_value > 0) out = out.clamp(-max_value, max_value);
  return out;
}

torch::Tensor Clr(const Matrix& X) {
  // muon.prot.pp.clr(axis=1): x / exp(mean_j log1p(x_ij)), then log1p.
  torch::Tensor x = MatrixToTensor(X);
  auto signed_log1p = [](const torch::Tensor& t) { return torch::sign(t) * torch::log1p(t.abs()); };
  torch::Tensor g = torch::exp(signed_log1p(x).mean(1, true));
  return signed_log1p(x / g);
}

Matrix TfIdf(const Matrix& X) {
  // muon.atac.pp.tfidf defaults: log_tf, log_idf (log1p), scale_factor 1e4.
  Matrix out = X.format == Matrix::Format::kCsc ? ToCsr(X) : X;
  const std::vector<double> row = RowSums(out);
  std::vector<int64_t> positive;
  std::vector<double> col;
  ColumnStats(out, &positive, &col);
  const double n = static_cast<double>(out.n_rows);
  auto tfidf = [&](float v, int64_t r, int64_t c) {
    const double tf = row[r] > 0 ? std::log1p(v / row[r] * 1e4) : 0.0;
    const double idf = col[c] > 0 ? std::log1p(n / col[c]) : 0.0;
    return static_cast<float>(tf * idf);
  };
  if (out.format == Matrix::Format::kDense) {
    for (int64_t r = 0; r < out.n_rows; ++r) {
      for (int64_t c = 0; c < out.n_cols; ++c) {
        float& v = out.values[r * out.n_cols + c];
        v = tfidf(v, r, c);
      }
    }
  } else {
    for (int64_t r = 0; r < out.n_rows; ++r) {
      for (int64_t p = out.indptr[r]; p < out.indptr[r + 1]; ++p) {
        out.values[p] = tfidf(out.values[p], r, out.indices[p]);
      }
    }
  }
  out.dtype = DType::kFloat32;
  return out;
}

absl::StatusOr<torch::Tensor> Pca(const Matrix& X, int64_t n_comps, uint64_t seed, bool center) {
  if (X.format == Matrix::Format::kDense) {
    torch::Tensor x = MatrixToTensor(X);
    if (center) x = x - x.mean(0, true);
    return RandomizedSvdScores(DenseOperator(x), n_comps, seed);
  }
  return RandomizedSvdScores(SparseOperator(ToCsr(X), center), n_comps, seed);
}

absl::StatusOr<torch::Tensor> Pca(const torch::Tensor& X, int64_t n_comps, uint64_t seed) {
  torch::Tensor x = X.to(torch::kCPU, torch::kFloat32);
  return RandomizedSvdScores(DenseOperator(x - x.mean(0, true)), n_comps, seed);
}

absl::StatusOr<torch::Tensor> Lsi(const Matrix& tfidf, int64_t n_comps, uint64_t seed,
                                  bool drop_first) {
  CANDIES_ASSIGN_OR_RETURN(torch::Tensor scores,
                           Pca(tfidf, n_comps + (drop_first ? 1 : 0), seed, /*center=*/false));
  return drop_first ? scores.slice(1, 1).contiguous() : scores;
}

}  // namespace pp

absl::StatusOr<PreprocessedModality> PreprocessModality(const AnnData& adata, ModalityKind kind,
                                                        const PreprocessOptions& options) {
  const std::string what = absl::StrCat("modality '", ModalityKindName(kind), "'");
  if (!adata.has_x || adata.X.n_rows == 0 || adata.X.n_cols == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": X is empty"));
  }
  if (adata.X.n_rows < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": needs at least 3 spots, got ", adata.X.n_rows));
  }
  CANDIES_RETURN_IF_ERROR(CheckFinite(adata.X, what));
  try {
    PreprocessedModality out;
    out.kind = kind;
    const int64_t n = adata.X.n_rows;
    AnnData work;
    work.X = adata.X;
    work.var = adata.var;
    if (work.var.n_rows() != work.X.n_cols) {
      work.var.index.clear();
      for (int64_t c = 0; c < work.X.n_cols; ++c) work.var.index.push_back(absl::StrCat(c));
      work.var.columns.clear();
    }
    std::vector<int64_t> kept(work.X.n_cols);
    std::iota(kept.begin(), kept.end(), 0);
    const bool fixed = !options.fixed_features.empty();
    std::vector<int64_t> fixed_cols;
    if (fixed) {
      if (kind == ModalityKind::kAtac)
        return absl::UnimplementedError(absl::StrCat(
            what, ": a fixed feature list (applying a trained model) needs rna or protein; LSI "
                  "components are specific to the section they were computed on"));
      std::unordered_map<std::string, int64_t> col_of;
      for (int64_t c = 0; c < work.X.n_cols; ++c) col_of.emplace(work.var.index[c], c);
      std::vector<std::string> missing;
      for (const auto& name : options.fixed_features) {
        auto it = col_of.find(name);
        if (it == col_of.end()) missing.push_back(name);
        else fixed_cols.push_back(it->second);
      }
      if (!missing.empty()) {
        missing.resize(std::min<size_t>(missing.size(), 5));
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": var_names lack ", options.fixed_features.size() - fixed_cols.size(), " of the ",
            options.fixed_features.size(), " features the model was trained on (e.g. ",
            absl::StrJoin(missing, ", "), ")"));
      }
    }
    if (kind != ModalityKind::kProtein && !fixed) {
      // Never filter below one spot's worth: small sections keep their features.
      const int64_t min_cells = std::min<int64_t>(options.min_cells, std::max<int64_t>(1, n / 10));
      CANDIES_ASSIGN_OR_RETURN(kept, pp::FilterGenes(work, min_cells, options.min_counts));
      if (kept.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": no feature is seen in ", min_cells, " spots (filter_genes)"));
      }
    }
    std::vector<int64_t> all_rows(n);
    std::iota(all_rows.begin(), all_rows.end(), 0);
    torch::Tensor expression;
    std::vector<int64_t> selected(kept.size());
    std::iota(selected.begin(), selected.end(), 0);
    switch (kind) {
      case ModalityKind::kRna: {
        if (fixed) {
          selected = fixed_cols;
        } else {
          CANDIES_ASSIGN_OR_RETURN(selected,
                                   pp::HighlyVariableGenesSeuratV3(work.X, options.n_top_genes));
        }
        Matrix counts = Subset(work.X, all_rows, selected);
        out.counts = MatrixToTensor(counts);
        Matrix norm = work.X;  // library size over all kept genes, as scanpy
        CANDIES_RETURN_IF_ERROR(pp::NormalizeTotal(norm, options.target_sum));
        norm = Subset(norm, all_rows, selected);
        pp::Log1p(norm);
        expression = pp::Scale(MatrixToTensor(norm), options.scale_max);
        break;
      }
      case ModalityKind::kProtein:
        expression = pp::Clr(work.X);  // CLR over every protein of the panel
        if (fixed) {
          selected = fixed_cols;
          expression = expression.index_select(
              1, torch::tensor(fixed_cols, torch::TensorOptions().dtype(torch::kInt64)));
        }
        expression = pp::Scale(expression, options.scale_max);
        break;
      case ModalityKind::kAtac: {
        const int64_t comps = std::max<int64_t>(
            1, std::min<int64_t>(options.n_comps, std::min(n, work.X.n_cols) - 2));
        CANDIES_ASSIGN_OR_RETURN(torch::Tensor lsi,
                                 pp::Lsi(pp::TfIdf(work.X), comps, options.seed, true));
        expression = pp::Scale(lsi, options.scale_max);
        selected.clear();
        for (int64_t c = 0; c < expression.size(1); ++c) {
          out.feature_names.push_back(absl::StrCat("LSI_", c + 2));
        }
        break;
      }
    }
    if (kind != ModalityKind::kAtac) {
      for (int64_t s : selected) {
        out.var_indices.push_back(kept[s]);
        out.feature_names.push_back(work.var.index[s]);
      }
    }
    // Scale maps constant columns to 0: a modality whose every column is 0 now
    // carried no variance to begin with.
    if (expression.abs().max().item<float>() == 0.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": every feature has zero variance across spots"));
    }
    out.expression = expression.contiguous();
    if (kind == ModalityKind::kAtac) {
      out.features = out.expression;
    } else if (fixed) {
      // The caller projects with the trained model's loadings.
    } else {
      const int64_t comps =
          std::max<int64_t>(1, std::min<int64_t>(options.n_comps,
                                                 std::min(n, expression.size(1)) - 1));
      CANDIES_ASSIGN_OR_RETURN(out.features, pp::Pca(out.expression, comps, options.seed));
    }
    return out;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": preprocessing failed: ", e.what()));
  }
}

}  // namespace candies
