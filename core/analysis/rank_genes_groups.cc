#include "core/analysis/rank_genes_groups.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

namespace candies {
namespace {

// One feature's stored entries: (value, row), zeros left implicit.
struct Entry {
  float value;
  int32_t row;
};

// Column-wise access to any layout: entries(j) lists column j's non-zeros.
class Columns {
 public:
  explicit Columns(const Matrix& x) : x_(x) {
    if (x.format == Matrix::Format::kCsr) {
      // Transpose once into CSC order.
      indptr_.assign(static_cast<size_t>(x.n_cols) + 1, 0);
      for (int32_t c : x.indices) ++indptr_[static_cast<size_t>(c) + 1];
      std::partial_sum(indptr_.begin(), indptr_.end(), indptr_.begin());
      entries_.resize(x.values.size());
      std::vector<int64_t> fill(indptr_.begin(), indptr_.end() - 1);
      for (int64_t r = 0; r < x.n_rows; ++r)
        for (int64_t k = x.indptr[r]; k < x.indptr[r + 1]; ++k)
          entries_[fill[x.indices[k]]++] = {x.values[k], static_cast<int32_t>(r)};
    }
  }

  void Get(int64_t j, std::vector<Entry>* out) const {
    out->clear();
    switch (x_.format) {
      case Matrix::Format::kDense:
        for (int64_t r = 0; r < x_.n_rows; ++r) {
          float v = x_.values[r * x_.n_cols + j];
          if (v != 0.0f) out->push_back({v, static_cast<int32_t>(r)});
        }
        break;
      case Matrix::Format::kCsc:
        for (int64_t k = x_.indptr[j]; k < x_.indptr[j + 1]; ++k)
          if (x_.values[k] != 0.0f) out->push_back({x_.values[k], x_.indices[k]});
        break;
      case Matrix::Format::kCsr:
        for (int64_t k = indptr_[j]; k < indptr_[j + 1]; ++k)
          if (entries_[k].value != 0.0f) out->push_back(entries_[k]);
        break;
    }
  }

 private:
  const Matrix& x_;
  std::vector<int64_t> indptr_;
  std::vector<Entry> entries_;
};

// Benjamini-Hochberg adjusted p-values (statsmodels' fdr_bh), NaN read as 1.
std::vector<double> BenjaminiHochberg(std::vector<double> p) {
  const size_t n = p.size();
  for (double& v : p)
    if (std::isnan(v)) v = 1.0;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(n);
  double running = 1.0;
  for (size_t k = n; k-- > 0;) {
    double v = p[order[k]] * static_cast<double>(n) / static_cast<double>(k + 1);
    running = std::min(running, v);
    adj[order[k]] = std::min(running, 1.0);
  }
  return adj;
}

}  // namespace

absl::StatusOr<RankGenesGroupsResult> RankGenesGroups(const Matrix& x,
                                                      const std::vector<std::string>& var_names,
                                                      const std::vector<int32_t>& codes,
                                                      const std::vector<std::string>& categories,
                                                      const std::string& groupby) {
  const int64_t n = x.n_rows, n_vars = x.n_cols;
  if (static_cast<int64_t>(codes.size()) != n)
    return absl::InvalidArgumentError(absl::StrCat(groupby, ": ", codes.size(),
                                                   " group codes for ", n, " observations"));
  if (static_cast<int64_t>(var_names.size()) != n_vars)
    return absl::InvalidArgumentError(absl::StrCat("var_names: ", var_names.size(),
                                                   " names for ", n_vars, " features"));
  // Groups actually present, in category order; slot[code] = group position.
  std::vector<int64_t> count(categories.size(), 0);
  for (int32_t c : codes) {
    if (c >= static_cast<int32_t>(categories.size()))
      return absl::InvalidArgumentError(absl::StrCat(groupby, ": code ", c, " has no category"));
    if (c >= 0) ++count[c];
  }
  std::vector<int> slot(categories.size(), -1);
  std::vector<int64_t> sizes;
  RankGenesGroupsResult result;
  result.groupby = groupby;
  for (size_t c = 0; c < categories.size(); ++c) {
    if (count[c] == 0) continue;
    if (count[c] < kMinObsPerGroup || n - count[c] < kMinObsPerGroup)
      return absl::InvalidArgumentError(
          absl::StrCat(groupby, ": group '", categories[c], "' has ", count[c], " of ", n,
                       " observations; a rank-sum test needs at least ", kMinObsPerGroup,
                       " in the group and in the rest"));
    slot[c] = static_cast<int>(sizes.size());
    sizes.push_back(count[c]);
    result.groups.push_back(GroupMarkers{categories[c], {}, {}, {}, {}, {}});
  }
  const size_t g = sizes.size();
  std::vector<std::vector<double>> z(g, std::vector<double>(n_vars)),
      lfc(g, std::vector<double>(n_vars));

  const Columns columns(x);
  std::vector<Entry> e;
  std::vector<double> rank_sum(g), nonzero_in(g), sum_in(g);
  const double nd = static_cast<double>(n);
  for (int64_t j = 0; j < n_vars; ++j) {
    columns.Get(j, &e);
    std::sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) { return a.value < b.value; });
    std::fill(rank_sum.begin(), rank_sum.end(), 0.0);
    std::fill(nonzero_in.begin(), nonzero_in.end(), 0.0);
    std::fill(sum_in.begin(), sum_in.end(), 0.0);
    double total = 0, ties = 0;
    const int64_t negatives =
        std::lower_bound(e.begin(), e.end(), 0.0f, [](const Entry& a, float v) { return a.value < v; }) -
        e.begin();
    const int64_t zeros = n - static_cast<int64_t>(e.size());
    // Walks runs of equal values; the implicit zeros form one run between the
    // negatives and the positives.
    auto add_run = [&](int64_t first_rank, int64_t len) {
      double t = static_cast<double>(len);
      ties += t * t * t - t;
      return static_cast<double>(first_rank) + (t - 1.0) / 2.0;  // average rank (1-based)
    };
    int64_t next_rank = 1;
    auto walk = [&](int64_t begin, int64_t end) {
      for (int64_t a = begin; a < end;) {
        int64_t b = a;
        while (b < end && e[b].value == e[a].value) ++b;
        double r = add_run(next_rank, b - a);
        next_rank += b - a;
        for (int64_t k = a; k < b; ++k) {
          int32_t c = codes[e[k].row];
          double v = e[k].value;
          total += v;
          if (c < 0 || slot[c] < 0) continue;
          rank_sum[slot[c]] += r;
          nonzero_in[slot[c]] += 1;
          sum_in[slot[c]] += v;
        }
        a = b;
      }
    };
    walk(0, negatives);
    double zero_rank = 0;
    if (zeros > 0) {
      zero_rank = add_run(next_rank, zeros);
      next_rank += zeros;
    }
    walk(negatives, static_cast<int64_t>(e.size()));
    const double tie = n > 1 ? 1.0 - ties / (nd * nd * nd - nd) : 1.0;
    for (size_t k = 0; k < g; ++k) {
      const double na = static_cast<double>(sizes[k]), ma = nd - na;
      const double r = rank_sum[k] + zero_rank * (na - nonzero_in[k]);
      const double sd = std::sqrt(tie * na * ma * (nd + 1.0) / 12.0);
      double score = (r - na * (nd + 1.0) / 2.0) / sd;
      z[k][j] = std::isnan(score) ? 0.0 : score;  // scanpy: NaN scores become 0
      const double mean_in = sum_in[k] / na, mean_rest = (total - sum_in[k]) / ma;
      lfc[k][j] = std::log2((std::expm1(mean_in) + 1e-9) / (std::expm1(mean_rest) + 1e-9));
    }
  }

  for (size_t k = 0; k < g; ++k) {
    std::vector<double> p(n_vars);
    for (int64_t j = 0; j < n_vars; ++j) p[j] = std::erfc(std::fabs(z[k][j]) / std::sqrt(2.0));
    std::vector<double> adj = BenjaminiHochberg(p);
    std::vector<int64_t> order(n_vars);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return z[k][a] > z[k][b]; });
    GroupMarkers& m = result.groups[k];
    for (int64_t j : order) {
      m.names.push_back(var_names[j]);
      m.scores.push_back(z[k][j]);
      m.pvals.push_back(p[j]);
      m.pvals_adj.push_back(adj[j]);
      m.logfoldchanges.push_back(lfc[k][j]);
    }
  }
  return result;
}

Matrix LogNormalizeCounts(const Matrix& x, double target_sum, bool* normalized) {
  *normalized = false;
  for (float v : x.values)
    if (v < 0 || v != std::floor(v)) return x;
  *normalized = true;
  const bool dense = x.format == Matrix::Format::kDense;
  Matrix out = dense ? x : ToCsr(x);
  out.dtype = DType::kFloat32;
  for (int64_t r = 0; r < out.n_rows; ++r) {
    const int64_t b = dense ? r * out.n_cols : out.indptr[r];
    const int64_t e = dense ? (r + 1) * out.n_cols : out.indptr[r + 1];
    double s = 0;
    for (int64_t k = b; k < e; ++k) s += out.values[k];
    const double f = s > 0 ? target_sum / s : 0.0;
    for (int64_t k = b; k < e; ++k)
      out.values[k] = static_cast<float>(std::log1p(static_cast<double>(out.values[k]) * f));
  }
  return out;
}

UnsValue RankGenesGroupsToUns(const RankGenesGroupsResult& r) {
  UnsValue u = UnsValue::Map();
  UnsValue params = UnsValue::Map();
  params.Set("groupby", UnsValue::String(r.groupby));
  params.Set("reference", UnsValue::String("rest"));
  params.Set("method", UnsValue::String("wilcoxon"));
  params.Set("use_raw", UnsValue::Bool(false));
  params.Set("corr_method", UnsValue::String("benjamini-hochberg"));
  params.Set("tie_correct", UnsValue::Bool(true));
  u.Set("params", params);
  UnsValue names = UnsValue::RecArray(), scores = UnsValue::RecArray(),
           pvals = UnsValue::RecArray(), adj = UnsValue::RecArray(),
           lfc = UnsValue::RecArray();
  for (const GroupMarkers& m : r.groups) {
    names.Set(m.group, UnsValue::StringArray(m.names));
    scores.Set(m.group, UnsValue::FloatArray(m.scores)).single = true;
    pvals.Set(m.group, UnsValue::FloatArray(m.pvals));
    adj.Set(m.group, UnsValue::FloatArray(m.pvals_adj));
    lfc.Set(m.group, UnsValue::FloatArray(m.logfoldchanges)).single = true;
  }
  u.Set("names", names);
  u.Set("scores", scores);
  u.Set("pvals", pvals);
  u.Set("pvals_adj", adj);
  u.Set("logfoldchanges", lfc);
  return u;
}

absl::StatusOr<RankGenesGroupsResult> RankGenesGroupsFromUns(const UnsValue& uns, int64_t n_top) {
  auto err = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("uns[\"rank_genes_groups\"]: ", what));
  };
  const UnsValue* params = uns.Find("params");
  const UnsValue* names = uns.Find("names");
  if (names == nullptr || names->kind != UnsValue::Kind::kRecArray) return err("names missing");
  RankGenesGroupsResult r;
  if (params != nullptr && params->Find("groupby") != nullptr)
    r.groupby = params->Find("groupby")->str;
  auto field = [&](const char* key, const std::string& group,
                   std::vector<double>* out) -> absl::Status {
    const UnsValue* rec = uns.Find(key);
    if (rec == nullptr) return absl::OkStatus();  // optional columns
    const UnsValue* f = rec->Find(group);
    if (f == nullptr || f->kind != UnsValue::Kind::kFloatArray)
      return err(absl::StrCat(key, ": no numeric field '", group, "'"));
    *out = f->floats;
    return absl::OkStatus();
  };
  for (const auto& [group, col] : names->children) {
    if (col.kind != UnsValue::Kind::kStringArray)
      return err(absl::StrCat("names: field '", group, "' is not strings"));
    GroupMarkers m;
    m.group = group;
    m.names = col.strings;
    for (auto [key, out] : {std::pair<const char*, std::vector<double>*>{"scores", &m.scores},
                            {"pvals", &m.pvals},
                            {"pvals_adj", &m.pvals_adj},
                            {"logfoldchanges", &m.logfoldchanges}}) {
      absl::Status st = field(key, group, out);
      if (!st.ok()) return st;
    }
    if (n_top > 0) {
      auto cut = [&](auto& v) {
        if (static_cast<int64_t>(v.size()) > n_top) v.resize(static_cast<size_t>(n_top));
      };
      cut(m.names), cut(m.scores), cut(m.pvals), cut(m.pvals_adj), cut(m.logfoldchanges);
    }
    r.groups.push_back(std::move(m));
  }
  return r;
}

}  // namespace candies
