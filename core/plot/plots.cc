#include "core/plot/plots.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/analysis/rank_genes_groups.h"

namespace candies::plot {
namespace {

constexpr const char* kPalette20[] = {
    "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2",
    "#b5bd61", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31"};
constexpr const char* kViridis[] = {"#440154", "#482878", "#3e4989", "#31688e", "#26828e",
                                    "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"};
const Rgb kBlack{0, 0, 0};
const Rgb kGrey{0.45, 0.45, 0.45};

constexpr int kMapSide = 420;     // pixels of one spatial map
constexpr int kLegendWidth = 130;
constexpr int kTitleHeight = 34;
constexpr int kMargin = 16;

struct Bounds {
  double x0, x1, y0, y1;
};

Bounds BoundsOf(const std::vector<float>& xy) {
  Bounds b{INFINITY, -INFINITY, INFINITY, -INFINITY};
  for (size_t i = 0; i + 1 < xy.size(); i += 2) {
    b.x0 = std::min<double>(b.x0, xy[i]), b.x1 = std::max<double>(b.x1, xy[i]);
    b.y0 = std::min<double>(b.y0, xy[i + 1]), b.y1 = std::max<double>(b.y1, xy[i + 1]);
  }
  if (!(b.x1 > b.x0)) b.x1 = b.x0 + 1;
  if (!(b.y1 > b.y0)) b.y1 = b.y0 + 1;
  return b;
}

// Maps coordinates into a side x side box at (left, top), aspect kept, y down
// (as image coordinates and scanpy's spatial plots).
struct Frame {
  Bounds b;
  double left, top, scale;
  double X(double x) const { return left + (x - b.x0) * scale; }
  double Y(double y) const { return top + (y - b.y0) * scale; }
};

Frame FrameFor(const Bounds& b, double left, double top, double side) {
  const double pad = 8;
  double scale = (side - 2 * pad) / std::max(b.x1 - b.x0, b.y1 - b.y0);
  return {b, left + pad, top + pad, scale};
}

double SpotRadius(const Frame& f, size_t n) {
  const double area = (f.b.x1 - f.b.x0) * (f.b.y1 - f.b.y0) * f.scale * f.scale;
  return std::clamp(0.5 * std::sqrt(area / std::max<size_t>(n, 1)), 1.0, 8.0);
}

// A bar of a round length (1, 2 or 5 x 10^k units) near a fifth of the width.
void Scalebar(Canvas& c, const Frame& f, double left, double bottom) {
  const double target = (f.b.x1 - f.b.x0) / 5;
  const double p = std::pow(10.0, std::floor(std::log10(target)));
  double len = p;
  for (double m : {2.0, 5.0, 10.0})
    if (m * p <= target) len = m * p;
  const double px = len * f.scale;
  c.Line(left, bottom, left + px, bottom, kBlack, 3);
  c.Text(left + px / 2, bottom - 6, absl::StrFormat("%g units", len), 11, false, kBlack, 0.5);
}

void SpatialCategories(Canvas& c, double left, double top, const std::string& title,
                       const std::vector<float>& xy, const Column& col) {
  c.Text(left + kMapSide / 2.0, top + 22, title, 16, true, kBlack, 0.5);
  const double map_top = top + kTitleHeight;
  Frame f = FrameFor(BoundsOf(xy), left, map_top, kMapSide);
  const size_t n = xy.size() / 2;
  const double r = SpotRadius(f, n);
  for (size_t i = 0; i < n && i < col.codes.size(); ++i) {
    int32_t code = col.codes[i];
    c.Dot(f.X(xy[2 * i]), f.Y(xy[2 * i + 1]), r,
          code < 0 ? Rgb{0.8, 0.8, 0.8} : CategoryColor(static_cast<size_t>(code)));
  }
  Scalebar(c, f, left + 12, map_top + kMapSide + 18);
  // Legend: one swatch per category.
  const double lx = left + kMapSide + 8;
  for (size_t k = 0; k < col.categories.size(); ++k) {
    const double y = map_top + 12 + 18.0 * static_cast<double>(k);
    if (y > map_top + kMapSide) break;
    c.Dot(lx + 6, y - 4, 6, CategoryColor(k));
    c.Text(lx + 18, y, col.categories[k], 12);
  }
}

std::pair<double, double> Range(const std::vector<float>& v) {
  std::vector<float> s;
  for (float x : v)
    if (std::isfinite(x)) s.push_back(x);
  if (s.empty()) return {0, 1};
  std::sort(s.begin(), s.end());
  // 1st-99th percentile, so one extreme spot does not wash out the map.
  double lo = s[s.size() / 100], hi = s[s.size() - 1 - s.size() / 100];
  if (!(hi > lo)) hi = lo + 1;
  return {lo, hi};
}

void SpatialValues(Canvas& c, double left, double top, const std::string& title,
                   const std::vector<float>& xy, const std::vector<float>& values) {
  c.Text(left + kMapSide / 2.0, top + 22, title, 14, true, kBlack, 0.5);
  const double map_top = top + kTitleHeight;
  Frame f = FrameFor(BoundsOf(xy), left, map_top, kMapSide);
  const size_t n = xy.size() / 2;
  const double r = SpotRadius(f, n);
  auto [lo, hi] = Range(values);
  for (size_t i = 0; i < n && i < values.size(); ++i)
    c.Dot(f.X(xy[2 * i]), f.Y(xy[2 * i + 1]), r, Viridis((values[i] - lo) / (hi - lo)));
  // Colour bar with its two ends.
  const double bx = left + kMapSide + 10, bh = kMapSide - 40;
  for (int k = 0; k < 100; ++k)
    c.Rect(bx, map_top + 20 + bh * (1 - (k + 1) / 100.0), 14, bh / 100.0 + 1, Viridis(k / 99.0));
  c.Text(bx + 18, map_top + 28, absl::StrFormat("%.3g", hi), 11);
  c.Text(bx + 18, map_top + 20 + bh, absl::StrFormat("%.3g", lo), 11);
  Scalebar(c, f, left + 12, map_top + kMapSide + 18);
}

}  // namespace

Rgb CategoryColor(size_t i) { return HexColor(kPalette20[i % 20]); }

Rgb Viridis(double t) {
  if (!std::isfinite(t)) return {0.8, 0.8, 0.8};
  t = std::clamp(t, 0.0, 1.0) * 9;
  const int k = std::min(8, static_cast<int>(t));
  const double u = t - k;
  Rgb a = HexColor(kViridis[k]), b = HexColor(kViridis[k + 1]);
  return {a.r + u * (b.r - a.r), a.g + u * (b.g - a.g), a.b + u * (b.b - a.b)};
}

absl::Status DomainMaps(const std::vector<float>& xy,
                        const std::vector<std::pair<std::string, const Column*>>& maps,
                        const std::string& path) {
  const int panel = kMapSide + kLegendWidth;
  Canvas c(kMargin + panel * static_cast<int>(maps.size()), kTitleHeight + kMapSide + 40);
  for (size_t m = 0; m < maps.size(); ++m)
    SpatialCategories(c, kMargin + panel * static_cast<double>(m), 0, maps[m].first, xy,
                      *maps[m].second);
  return c.WritePng(path);
}

absl::Status FeatureMaps(const std::vector<float>& xy, const std::vector<FeaturePair>& features,
                         const std::string& path) {
  const int panel_w = kMapSide + 80, panel_h = kTitleHeight + kMapSide + 36;
  Canvas c(kMargin + 2 * panel_w, static_cast<int>(features.size()) * panel_h);
  for (size_t k = 0; k < features.size(); ++k) {
    const double top = panel_h * static_cast<double>(k);
    SpatialValues(c, kMargin, top, features[k].name + " (raw)", xy, features[k].raw);
    SpatialValues(c, kMargin + panel_w, top, features[k].name + " (denoised)", xy,
                  features[k].denoised);
  }
  return c.WritePng(path);
}

absl::Status LossCurves(const UnsValue& losses, const std::string& path) {
  const int cols = 3, w = 320, h = 220;
  const int n = static_cast<int>(losses.children.size());
  const int rows = std::max(1, (n + cols - 1) / cols);
  Canvas c(cols * w + kMargin, rows * h + kMargin);
  for (int s = 0; s < n; ++s) {
    const auto& [stage, curve] = losses.children[s];
    const double left = kMargin + (s % cols) * w + 50, top = (s / cols) * h + 30;
    const double pw = w - 70, ph = h - 70;
    c.Text(left + pw / 2, top - 8, stage, 13, true, kBlack, 0.5);
    c.Frame(left, top, pw, ph, kGrey);
    const std::vector<double>& v = curve.floats;
    if (v.empty()) continue;
    auto [mn, mx] = std::minmax_element(v.begin(), v.end());
    double lo = *mn, hi = *mx > *mn ? *mx : *mn + 1;
    c.Text(left - 4, top + 10, absl::StrFormat("%.3g", hi), 10, false, kBlack, 1.0);
    c.Text(left - 4, top + ph, absl::StrFormat("%.3g", lo), 10, false, kBlack, 1.0);
    c.Text(left + pw, top + ph + 14, absl::StrCat(v.size(), " steps"), 10, false, kBlack, 1.0);
    for (size_t i = 1; i < v.size(); ++i) {
      auto px = [&](size_t j) { return left + pw * j / std::max<double>(1, v.size() - 1); };
      auto py = [&](size_t j) { return top + ph * (1 - (v[j] - lo) / (hi - lo)); };
      c.Line(px(i - 1), py(i - 1), px(i), py(i), CategoryColor(0), 1.5);
    }
  }
  return c.WritePng(path);
}

absl::Status ConfusionMatrix(const Column& truth, const Column& domains, const std::string& path) {
  const size_t nr = truth.categories.size(), nc = domains.categories.size();
  if (truth.codes.size() != domains.codes.size())
    return absl::InvalidArgumentError("confusion matrix: labels and domains differ in length");
  std::vector<std::vector<int64_t>> m(nr, std::vector<int64_t>(nc, 0));
  for (size_t i = 0; i < truth.codes.size(); ++i)
    if (truth.codes[i] >= 0 && domains.codes[i] >= 0) ++m[truth.codes[i]][domains.codes[i]];
  const double cell = std::clamp(600.0 / std::max(nr, nc), 18.0, 60.0);
  double label_w = 40;
  Canvas probe(1, 1);
  for (const std::string& s : truth.categories) label_w = std::max(label_w, probe.TextWidth(s, 12) + 12);
  const double left = kMargin + label_w, top = 70;
  Canvas c(static_cast<int>(left + cell * nc + kMargin + 20),
           static_cast<int>(top + cell * nr + 50));
  c.Text(left + cell * nc / 2, 24, "domains (columns) vs labels (rows)", 14, true, kBlack, 0.5);
  for (size_t j = 0; j < nc; ++j)
    c.Text(left + cell * (j + 0.5), top - 8, domains.categories[j], 12, false, kBlack, 0.5);
  const Rgb dark = HexColor("#08519c");
  for (size_t i = 0; i < nr; ++i) {
    int64_t row = 0;
    for (int64_t v : m[i]) row += v;
    c.Text(left - 6, top + cell * (i + 0.6), truth.categories[i], 12, false, kBlack, 1.0);
    for (size_t j = 0; j < nc; ++j) {
      const double f = row > 0 ? static_cast<double>(m[i][j]) / row : 0;
      c.Rect(left + cell * j, top + cell * i, cell, cell,
             {1 + f * (dark.r - 1), 1 + f * (dark.g - 1), 1 + f * (dark.b - 1)});
      if (cell >= 28 && m[i][j] > 0)
        c.Text(left + cell * (j + 0.5), top + cell * (i + 0.6), std::to_string(m[i][j]), 10, false,
               f > 0.5 ? Rgb{1, 1, 1} : kBlack, 0.5);
    }
  }
  c.Frame(left, top, cell * nc, cell * nr, kGrey);
  return c.WritePng(path);
}

namespace {

std::vector<float> ColumnOf(const Matrix& m, int64_t j) {
  std::vector<float> v(static_cast<size_t>(m.n_rows), 0.0f);
  if (m.format == Matrix::Format::kDense) {
    for (int64_t r = 0; r < m.n_rows; ++r) v[r] = m.values[r * m.n_cols + j];
  } else if (m.format == Matrix::Format::kCsr) {
    for (int64_t r = 0; r < m.n_rows; ++r)
      for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; ++k)
        if (m.indices[k] == j) v[r] = m.values[k];
  } else {
    for (int64_t k = m.indptr[j]; k < m.indptr[j + 1]; ++k) v[m.indices[k]] = m.values[k];
  }
  return v;
}

// The denoised modality's best marker feature of each of the first domains:
// its raw and denoised values, in result spot order.
absl::StatusOr<std::vector<FeaturePair>> DenoisedMarkers(const AnnData& result,
                                                         const AnnData& denoised,
                                                         const Column& domains) {
  auto raw = denoised.layers.find("raw");
  if (!denoised.has_x || raw == denoised.layers.end())
    return absl::FailedPreconditionError("the denoised modality has no X or layers[\"raw\"]");
  // Spots of the result, found in the denoised AnnData by name.
  std::map<std::string, int64_t> row_of;
  for (int64_t i = 0; i < denoised.n_obs(); ++i) row_of[denoised.obs.index[i]] = i;
  std::vector<int64_t> rows;
  for (const std::string& s : result.obs.index) {
    auto it = row_of.find(s);
    if (it == row_of.end()) return absl::FailedPreconditionError("denoised spots differ from the result's");
    rows.push_back(it->second);
  }
  const Matrix x = Subset(denoised.X, rows), r = Subset(raw->second, rows);
  absl::StatusOr<RankGenesGroupsResult> ranked =
      RankGenesGroups(x, denoised.var.index, domains.codes, domains.categories, "domains");
  if (!ranked.ok()) return ranked.status();
  std::vector<FeaturePair> out;
  std::vector<std::string> used;
  for (const GroupMarkers& g : ranked->groups) {
    if (static_cast<int>(out.size()) == kDenoisedFeaturesShown) break;
    for (const std::string& name : g.names) {
      if (std::find(used.begin(), used.end(), name) != used.end()) continue;
      const int64_t j = std::find(denoised.var.index.begin(), denoised.var.index.end(), name) -
                        denoised.var.index.begin();
      used.push_back(name);
      out.push_back({absl::StrCat(name, ", domain ", g.group, " marker"), ColumnOf(r, j),
                     ColumnOf(x, j)});
      break;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<JobPlots> WriteJobPlots(const AnnData& result, const AnnData* denoised,
                                       const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  JobPlots plots;
  auto write = [&](const std::string& name, const absl::Status& st) -> absl::Status {
    if (!st.ok()) return st;
    plots.files.emplace_back(name, dir + "/" + name + ".png");
    return absl::OkStatus();
  };
  const Column* domains = result.obs.Find("candies_cluster");
  auto sp = result.obsm.find("spatial");
  if (domains == nullptr || domains->kind != Column::Kind::kCategorical)
    return absl::InvalidArgumentError("obs[\"candies_cluster\"]: missing (not a candies result?)");
  if (sp == result.obsm.end() || sp->second.n_cols < 2 || sp->second.n_rows != result.n_obs())
    return absl::InvalidArgumentError("obsm[\"spatial\"]: missing or not N x 2");
  const Matrix xy2 = ToDense(sp->second);
  std::vector<float> xy;
  for (int64_t i = 0; i < xy2.n_rows; ++i)
    xy.insert(xy.end(), {xy2.values[i * xy2.n_cols], xy2.values[i * xy2.n_cols + 1]});

  auto path = [&](const char* name) { return dir + "/" + name + ".png"; };
  absl::Status st = write("domains", DomainMaps(xy, {{"CANDIES domains", domains}}, path("domains")));
  if (!st.ok()) return st;
  const Column* m1 = result.obs.Find("candies_cluster_mod1");
  const Column* m2 = result.obs.Find("candies_cluster_mod2");
  if (m1 != nullptr && m2 != nullptr) {
    st = write("domains_by_modality",
               DomainMaps(xy, {{"mod1 alone", m1}, {"mod2 alone", m2}, {"joint", domains}},
                          path("domains_by_modality")));
    if (!st.ok()) return st;
  } else {
    plots.skipped.push_back("domains_by_modality: the result has no per-modality clusters");
  }
  if (denoised != nullptr) {
    absl::StatusOr<std::vector<FeaturePair>> f = DenoisedMarkers(result, *denoised, *domains);
    if (f.ok()) {
      st = write("denoising", FeatureMaps(xy, *f, path("denoising")));
      if (!st.ok()) return st;
    } else {
      plots.skipped.push_back(absl::StrCat("denoising: ", f.status().message()));
    }
  } else {
    plots.skipped.push_back("denoising: no denoised matrix");
  }
  const UnsValue* candies = result.uns.Find("candies");
  const UnsValue* losses = candies != nullptr ? candies->Find("losses") : nullptr;
  if (losses != nullptr && !losses->children.empty()) {
    st = write("losses", LossCurves(*losses, path("losses")));
    if (!st.ok()) return st;
  } else {
    plots.skipped.push_back("losses: uns[\"candies\"][\"losses\"] is missing");
  }
  const Column* truth = result.obs.Find("candies_truth");
  if (truth != nullptr && truth->kind == Column::Kind::kCategorical) {
    st = write("confusion", ConfusionMatrix(*truth, *domains, path("confusion")));
    if (!st.ok()) return st;
  } else {
    plots.skipped.push_back("confusion: no labels (obs[\"candies_truth\"])");
  }
  return plots;
}

}  // namespace candies::plot
