#include "core/sim/families.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace candies {

namespace {

constexpr double kPi = 3.14159265358979323846;

FamilyModality Rna(double sd, double dropout, double fold = 8.75, int64_t genes = 800) {
  FamilyModality m;
  m.kind = "rna";
  m.n_features = genes;
  m.markers_per_domain = 30;
  m.background_mean = 0.5;
  m.marker_fold = fold;
  m.dispersion = 3.0;
  m.dropout = dropout;
  m.noise_mean = 2.0;
  m.noise_sd = sd;
  return m;
}

FamilyModality Protein(int64_t panel, double fold = 2.4, double sd = 1.0) {
  FamilyModality m;
  m.kind = "protein";
  m.n_features = panel;
  // About a tenth of the panel marks each domain (at least 2 antibodies).
  m.markers_per_domain = std::max<int64_t>(2, panel / 10);
  m.background_mean = 2.0;
  m.feature_mean_sd = 0.2;
  m.marker_fold = fold;
  m.dispersion = 3.0;
  m.dropout = 0.0;
  m.noise_mean = 2.0;
  m.noise_sd = sd;
  return m;
}

FamilyModality Atac(int64_t peaks, double fold) {
  FamilyModality m;
  m.kind = "atac";
  m.n_features = peaks;
  m.markers_per_domain = peaks / 20;
  m.background_mean = 0.08;  // most peaks are closed in most spots
  m.feature_mean_sd = 0.5;
  m.marker_fold = fold;
  m.dispersion = 1.0;
  m.dropout = 0.0;
  m.noise_mean = 0.0;
  m.noise_sd = 0.0;  // counts stay counts (fragments in peaks)
  return m;
}

std::vector<FamilySpec> MakeFamilies() {
  std::vector<FamilySpec> f;
  auto add = [&](FamilySpec s) { f.push_back(std::move(s)); };
  // ---- tuning families ----
  {
    FamilySpec s;
    s.name = "grid_shapes";
    s.imitates = "the paper's simulation: CITE-seq-like RNA + 100-antibody panel on a square array";
    s.layout = FamilyLayout::kGrid; s.n_spots = 1296;
    s.structure = FamilyStructure::kBlocks; s.n_domains = 5; s.shape_scale = 0.8;
    s.mod1 = Rna(3, 0.3); s.mod2 = Protein(100);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "grid_layers_noisy";
    s.imitates = "DBiT-seq / SPOTS array over a layered tissue, noisy RNA (sd 5, dropout 0.5)";
    s.layout = FamilyLayout::kGrid; s.n_spots = 1600;
    s.structure = FamilyStructure::kLayers; s.n_domains = 6;
    s.library_sd = 0.35; s.domain_library_sd = 0.2;
    s.mod1 = Rna(5, 0.5); s.mod2 = Protein(50);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "hex_visium_cortex";
    s.imitates = "10x Visium (hexagonal, 6 neighbours) with a 35-antibody panel over cortex layers + white matter";
    s.layout = FamilyLayout::kHex; s.n_spots = 4000;
    s.structure = FamilyStructure::kLayers; s.n_domains = 7;
    s.library_sd = 0.45; s.domain_library_sd = 0.25;
    s.mod1 = Rna(4, 0.4, 8.75, 1000); s.mod2 = Protein(35);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "grid_protein_noisy";
    s.imitates = "SPOTS-like array where the antibody channel is the noisy one (clean RNA, noisy 24-antibody panel)";
    s.layout = FamilyLayout::kGrid; s.n_spots = 1296;
    s.structure = FamilyStructure::kBlocks; s.n_domains = 5; s.shape_scale = 0.6;  // large background
    s.mod1 = Rna(2, 0.2); s.mod2 = Protein(24, 2.4, 5.0);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "uniform_weak";
    s.imitates = "Slide-seq-like random bead positions, both modalities weak and complementary";
    s.layout = FamilyLayout::kUniform; s.n_spots = 1500;
    s.structure = FamilyStructure::kBlocks; s.n_domains = 6; s.shape_scale = 0.95;  // small background
    s.library_sd = 0.3; s.domain_library_sd = 0.15;
    s.mod1 = Rna(4, 0.4, 10.0); s.mod1.domain_coverage = 0.67;
    s.mod2 = Protein(30, 3.5, 1.5); s.mod2.domain_coverage = 0.67;
    add(s);
  }
  {
    FamilySpec s;
    s.name = "grid_panel_islands";
    s.imitates = "CITE-seq-style 12-antibody panel, very noisy RNA (sd 6, dropout 0.6), layers with small islands (2%)";
    s.layout = FamilyLayout::kGrid; s.n_spots = 1600;
    s.structure = FamilyStructure::kLayers; s.n_domains = 8; s.island_fraction = 0.02;
    s.library_sd = 0.5; s.domain_library_sd = 0.3;
    s.mod1 = Rna(6, 0.6); s.mod2 = Protein(12, 3.0);
    add(s);
  }
  // ---- held-out families (never tuned on) ----
  {
    FamilySpec s;
    s.name = "cells_stereo";
    s.imitates = "Stereo-CITE-seq cell bins: clustered cell-like density, 12 domains, high dropout";
    s.held_out = true;
    s.layout = FamilyLayout::kCells; s.n_spots = 2000;
    s.structure = FamilyStructure::kBlocks; s.n_domains = 12; s.shape_scale = 0.85;
    s.library_sd = 0.5; s.domain_library_sd = 0.2;
    s.mod1 = Rna(3, 0.5, 14.0); s.mod2 = Protein(30, 5.0);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "grid_rings";
    s.imitates = "a tumour section on a square array: concentric zones (core, rim, stroma), noisy RNA";
    s.held_out = true;
    s.layout = FamilyLayout::kGrid; s.n_spots = 1521;
    s.structure = FamilyStructure::kRings; s.n_domains = 5;
    s.library_sd = 0.35; s.domain_library_sd = 0.3;
    s.mod1 = Rna(5, 0.5); s.mod2 = Protein(40);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "grid_atac_rna";
    s.imitates = "spatial ATAC-RNA-seq / MISAR-seq (DBiT-style square array, RNA + chromatin peaks)";
    s.held_out = true;
    s.layout = FamilyLayout::kGrid; s.n_spots = 1600;
    s.structure = FamilyStructure::kBlocks; s.n_domains = 6; s.shape_scale = 0.85;
    s.library_sd = 0.4; s.domain_library_sd = 0.2;
    s.mod1 = Rna(3, 0.4); s.mod2 = Atac(2000, 6.0);
    add(s);
  }
  {
    FamilySpec s;
    s.name = "hex_weak";
    s.imitates = "jittered Visium-like hexagonal spots, 6 domains, both modalities weak and complementary";
    s.held_out = true;
    s.layout = FamilyLayout::kHex; s.n_spots = 2000; s.jitter = 0.12;
    s.structure = FamilyStructure::kBlocks; s.n_domains = 6; s.shape_scale = 0.9;
    s.library_sd = 0.3; s.domain_library_sd = 0.15;
    s.mod1 = Rna(4, 0.4, 14.0); s.mod1.domain_coverage = 0.67;
    s.mod2 = Protein(25, 4.5, 1.5); s.mod2.domain_coverage = 0.67;
    add(s);
  }
  return f;
}

absl::Status Check(bool ok, const std::string& field, const std::string& why) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("FamilySpec.", field, ": ", why));
}

absl::Status CheckModality(const FamilyModality& m, const std::string& role) {
  for (const auto& s :
       {Check(m.kind == "rna" || m.kind == "protein" || m.kind == "atac", role + ".kind",
              "must be rna|protein|atac"),
        Check(m.n_features >= 2, role + ".n_features", "must be >= 2"),
        Check(m.markers_per_domain >= 1 && m.markers_per_domain <= m.n_features,
              role + ".markers_per_domain", "must be in [1, n_features]"),
        Check(m.background_mean > 0 && m.marker_fold > 0, role + ".background_mean",
              "means and fold must be > 0"),
        Check(m.domain_coverage > 0 && m.domain_coverage <= 1, role + ".domain_coverage",
              "must be in (0, 1]"),
        Check(m.dispersion > 0, role + ".dispersion", "must be > 0"),
        Check(m.dropout >= 0 && m.dropout < 1, role + ".dropout", "must be in [0, 1)"),
        Check(m.noise_sd >= 0 && m.feature_mean_sd >= 0, role + ".noise_sd", "must be >= 0")}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

double SampleNb(std::mt19937_64& rng, double mu, double r) {
  std::gamma_distribution<double> gamma(r, mu / r);
  std::poisson_distribution<int64_t> pois(gamma(rng));
  return static_cast<double>(pois(rng));
}

// The bounding box: each axis is mapped onto [0, 1] for the structure.
void Bounds(const std::vector<float>& xy, double* x0, double* y0, double* xspan, double* yspan) {
  double xmin = 1e30, xmax = -1e30, ymin = 1e30, ymax = -1e30;
  for (size_t i = 0; i + 1 < xy.size(); i += 2) {
    xmin = std::min<double>(xmin, xy[i]); xmax = std::max<double>(xmax, xy[i]);
    ymin = std::min<double>(ymin, xy[i + 1]); ymax = std::max<double>(ymax, xy[i + 1]);
  }
  *x0 = xmin; *y0 = ymin;
  *xspan = std::max(xmax - xmin, 1e-9);
  *yspan = std::max(ymax - ymin, 1e-9);
}

// Domain 1..K-1 shapes in cells of a g x g partition, background 0.
int32_t BlockDomain(double u, double v, const std::vector<std::array<double, 5>>& shapes) {
  for (size_t s = 0; s < shapes.size(); ++s) {
    const auto& [cx, cy, hx, hy, type] = shapes[s];
    const double dx = (u - cx) / hx, dy = (v - cy) / hy;
    bool in = false;
    switch (static_cast<int>(type)) {
      case 0: in = std::abs(dx) <= 1 && std::abs(dy) <= 1; break;          // rectangle
      case 1: in = dx * dx + dy * dy <= 1; break;                          // ellipse
      case 2: in = std::abs(dx) + std::abs(dy) <= 1; break;                // diamond
      case 3: in = dy >= -1 && dy <= 1 && std::abs(dx) <= (dy + 1) / 2; break;  // triangle
      default: in = (std::abs(dx) <= 1 && std::abs(dy) <= 0.35) ||
                    (std::abs(dy) <= 1 && std::abs(dx) <= 0.35); break;   // cross
    }
    if (in) return static_cast<int32_t>(s + 1);
  }
  return 0;
}

}  // namespace

const char* FamilyLayoutName(FamilyLayout layout) {
  switch (layout) {
    case FamilyLayout::kGrid: return "grid";
    case FamilyLayout::kHex: return "hex";
    case FamilyLayout::kUniform: return "uniform";
    case FamilyLayout::kCells: return "cells";
  }
  return "grid";
}

const char* FamilyStructureName(FamilyStructure structure) {
  switch (structure) {
    case FamilyStructure::kBlocks: return "blocks";
    case FamilyStructure::kLayers: return "layers";
    case FamilyStructure::kRings: return "rings";
  }
  return "blocks";
}

const std::vector<FamilySpec>& Families() {
  static const std::vector<FamilySpec>* families = new std::vector<FamilySpec>(MakeFamilies());
  return *families;
}

absl::StatusOr<FamilySpec> FindFamily(absl::string_view name) {
  std::vector<std::string> names;
  for (const auto& f : Families()) {
    if (f.name == name) return f;
    names.push_back(f.name);
  }
  return absl::NotFoundError(absl::StrCat("family '", name, "' is not one of: ",
                                          absl::StrJoin(names, ", ")));
}

std::vector<float> FamilyPositions(const FamilySpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919 + 11);
  std::vector<float> xy;
  const int64_t n = spec.n_spots;
  switch (spec.layout) {
    case FamilyLayout::kGrid: {
      const int64_t side = std::max<int64_t>(2, std::llround(std::sqrt(static_cast<double>(n))));
      const int64_t rows = (n + side - 1) / side;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < side; ++c) xy.insert(xy.end(), {float(c), float(r)});
      break;
    }
    case FamilyLayout::kHex: {
      // Visium: centre-to-centre distance 1, rows sqrt(3)/2 apart, odd rows
      // shifted by half a spacing; a roughly square section.
      const double dy = std::sqrt(3.0) / 2;
      const int64_t cols = std::max<int64_t>(2, std::llround(std::sqrt(n * dy)));
      const int64_t rows = (n + cols - 1) / cols;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          xy.insert(xy.end(), {float(c + 0.5 * (r % 2)), float(r * dy)});
      break;
    }
    case FamilyLayout::kUniform: {
      const double side = std::sqrt(static_cast<double>(n));
      std::uniform_real_distribution<double> u(0, side);
      for (int64_t i = 0; i < n; ++i) xy.insert(xy.end(), {float(u(rng)), float(u(rng))});
      break;
    }
    case FamilyLayout::kCells: {
      // A Thomas cluster process: 80% of the spots around parent "cells
      // clusters" (Gaussian, sd 1.2), 20% scattered; density varies ~10-fold.
      const double side = std::sqrt(static_cast<double>(n));
      std::uniform_real_distribution<double> u(0, side);
      const int64_t parents = std::max<int64_t>(1, n / 25);
      std::vector<std::pair<double, double>> centre(parents);
      for (auto& c : centre) c = {u(rng), u(rng)};
      std::uniform_int_distribution<int64_t> pick(0, parents - 1);
      std::normal_distribution<double> off(0, 1.2);
      std::uniform_real_distribution<double> coin(0, 1);
      for (int64_t i = 0; i < n; ++i) {
        double x, y;
        if (coin(rng) < 0.2) {
          x = u(rng); y = u(rng);
        } else {
          const auto& c = centre[pick(rng)];
          x = std::clamp(c.first + off(rng), 0.0, side);
          y = std::clamp(c.second + off(rng), 0.0, side);
        }
        xy.insert(xy.end(), {float(x), float(y)});
      }
      break;
    }
  }
  if (spec.jitter > 0) {
    std::normal_distribution<double> j(0, spec.jitter);
    for (float& v : xy) v = static_cast<float>(v + j(rng));
  }
  return xy;
}

std::vector<int32_t> FamilyDomains(const FamilySpec& spec, const std::vector<float>& xy,
                                   uint64_t seed) {
  std::mt19937_64 rng(seed * 104729 + 3);
  std::uniform_real_distribution<double> unif(0, 1);
  const int64_t n = static_cast<int64_t>(xy.size() / 2);
  double x0, y0, xspan, yspan;
  Bounds(xy, &x0, &y0, &xspan, &yspan);
  auto uv = [&](int64_t i) {
    return std::pair<double, double>((xy[2 * i] - x0) / xspan, (xy[2 * i + 1] - y0) / yspan);
  };
  const int64_t k_islands = spec.island_fraction > 0 ? 1 : 0;
  const int64_t k = spec.n_domains - k_islands;  // domains of the main structure
  std::vector<int32_t> dom(static_cast<size_t>(n), 0);
  switch (spec.structure) {
    case FamilyStructure::kBlocks: {
      const int64_t shapes_n = k - 1;
      const int64_t g = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(shapes_n))));
      std::vector<int64_t> cells(g * g);
      std::iota(cells.begin(), cells.end(), 0);
      std::shuffle(cells.begin(), cells.end(), rng);
      std::vector<std::array<double, 5>> shapes;
      const double cell = 1.0 / g;
      for (int64_t s = 0; s < shapes_n; ++s) {
        const double cx = (cells[s] % g + 0.5 + 0.16 * (unif(rng) - 0.5)) * cell;
        const double cy = (cells[s] / g + 0.5 + 0.16 * (unif(rng) - 0.5)) * cell;
        const double h = spec.shape_scale * cell / 2;
        const double aspect = 0.75 + 0.5 * unif(rng);
        shapes.push_back({cx, cy, h * std::min(1.0, aspect), h * std::min(1.0, 1.0 / aspect),
                          static_cast<double>((s + static_cast<int64_t>(5 * unif(rng))) % 5)});
      }
      for (int64_t i = 0; i < n; ++i) {
        auto [u, v] = uv(i);
        dom[i] = BlockDomain(u, v, shapes);
      }
      break;
    }
    case FamilyStructure::kLayers: {
      // k bands across v with random widths (0.6-1.4 of the mean), all bent by
      // the same gentle wave (cortex layers are parallel).
      std::vector<double> w(k);
      for (auto& x : w) x = 0.6 + 0.8 * unif(rng);
      const double total = std::accumulate(w.begin(), w.end(), 0.0);
      std::vector<double> bound;
      double acc = 0;
      for (int64_t d = 0; d + 1 < k; ++d) bound.push_back(acc += w[d] / total);
      const double amp = 0.05, freq = 0.5 + unif(rng), phase = 2 * kPi * unif(rng);
      const double tilt = 0.2 * (unif(rng) - 0.5);
      for (int64_t i = 0; i < n; ++i) {
        auto [u, v] = uv(i);
        const double shift = amp * std::sin(2 * kPi * freq * u + phase) + tilt * (u - 0.5);
        int32_t d = 0;
        for (double b : bound) d += (v - shift) > b ? 1 : 0;
        dom[i] = d;
      }
      break;
    }
    case FamilyStructure::kRings: {
      // k-1 rings of equal width around an off-centre point; outside: background 0.
      const double cx = 0.5 + 0.1 * (unif(rng) - 0.5), cy = 0.5 + 0.1 * (unif(rng) - 0.5);
      const double radius = 0.42, squash = 0.85 + 0.3 * unif(rng);
      for (int64_t i = 0; i < n; ++i) {
        auto [u, v] = uv(i);
        const double r = std::hypot((u - cx) * squash, (v - cy) / squash) / radius;
        dom[i] = r >= 1 ? 0 : static_cast<int32_t>(k - 1 - std::floor(r * (k - 1)));
      }
      break;
    }
  }
  if (k_islands > 0) {
    // Small discs (about 10 spots each) until the island domain holds
    // island_fraction of the spots.
    const int32_t island = static_cast<int32_t>(spec.n_domains - 1);
    const int64_t target = std::max<int64_t>(1, std::llround(spec.island_fraction * n));
    const double r = std::sqrt(10.0 / kPi / n);  // in unit-square coordinates, density ~ n
    int64_t have = 0;
    for (int tries = 0; have < target && tries < 10000; ++tries) {
      const double cx = 0.1 + 0.8 * unif(rng), cy = 0.1 + 0.8 * unif(rng);
      for (int64_t i = 0; i < n && have < target; ++i) {
        auto [u, v] = uv(i);
        if (dom[i] != island && std::hypot(u - cx, v - cy) <= r) { dom[i] = island; ++have; }
      }
    }
  }
  return dom;
}

namespace {

AnnData MakeModality(std::mt19937_64& rng, const FamilyModality& m,
                     const std::vector<int32_t>& domain, int64_t n_domains,
                     const std::vector<bool>& marked, const std::vector<double>& library,
                     const std::vector<float>& xy, const std::vector<std::string>& names) {
  const int64_t n = static_cast<int64_t>(domain.size()), p = m.n_features;
  std::normal_distribution<double> z(0, 1);
  std::vector<double> base(p);
  for (auto& b : base) b = m.background_mean * std::exp(m.feature_mean_sd * z(rng));
  // fold[d * p + j]: the marker fold of feature j in domain d (1 if not a marker).
  std::vector<double> fold(static_cast<size_t>(n_domains * p), 1.0);
  std::vector<int64_t> order(p);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t d = 0; d < n_domains; ++d) {
    if (!marked[d]) continue;
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t j = 0; j < m.markers_per_domain; ++j) fold[d * p + order[j]] = m.marker_fold;
  }
  std::uniform_real_distribution<double> unif(0, 1);
  std::normal_distribution<double> noise(m.noise_mean, m.noise_sd);
  std::vector<float> x(static_cast<size_t>(n * p));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < p; ++j) {
      const double mu = base[j] * fold[domain[i] * p + j] * library[i];
      double v = SampleNb(rng, mu, m.dispersion);
      if (m.dropout > 0 && unif(rng) < m.dropout) v = 0;
      if (m.noise_sd > 0) v += noise(rng);
      x[static_cast<size_t>(i * p + j)] = static_cast<float>(std::max(v, 0.0));
    }
  }
  AnnData a;
  a.X = Matrix::Dense(n, p, std::move(x));
  a.obs.index = names;
  std::vector<std::string> labels(domain.size());
  for (size_t i = 0; i < domain.size(); ++i)
    labels[i] = absl::StrCat("domain", domain[i] < 10 ? "0" : "", domain[i]);
  a.obs.Set(Column::Categorical("domain", labels));
  const char* prefix = m.kind == "rna" ? "gene" : m.kind == "protein" ? "protein" : "peak";
  for (int64_t j = 0; j < p; ++j) a.var.index.push_back(absl::StrCat(prefix, j));
  a.obsm["spatial"] = Matrix::Dense(n, 2, xy);
  return a;
}

}  // namespace

absl::StatusOr<FamilyData> SimulateFamily(const FamilySpec& s, uint64_t seed) {
  for (const auto& st :
       {Check(s.n_spots >= 50, "n_spots", "must be >= 50"),
        Check(s.n_domains >= 2 + (s.island_fraction > 0 ? 1 : 0), "n_domains",
              "must be >= 2 (3 with islands)"),
        Check(s.island_fraction >= 0 && s.island_fraction < 0.2, "island_fraction",
              "must be in [0, 0.2)"),
        Check(s.shape_scale > 0 && s.shape_scale <= 1, "shape_scale", "must be in (0, 1]"),
        Check(s.jitter >= 0 && s.library_sd >= 0 && s.domain_library_sd >= 0, "jitter",
              "jitter and library sds must be >= 0"),
        CheckModality(s.mod1, "mod1"), CheckModality(s.mod2, "mod2")}) {
    if (!st.ok()) return st;
  }
  FamilyData out;
  std::vector<float> xy = FamilyPositions(s, seed);
  out.domain = FamilyDomains(s, xy, seed);
  const int64_t n = static_cast<int64_t>(out.domain.size());
  std::vector<int64_t> count(s.n_domains, 0);
  for (int32_t d : out.domain) ++count[d];
  for (int64_t d = 0; d < s.n_domains; ++d)
    if (count[d] == 0)
      return absl::InternalError(absl::StrCat("family ", s.name, " seed ", seed, ": domain ", d,
                                              " is empty (shapes too small for the layout)"));
  std::mt19937_64 rng(seed * 2654435761u + 17);
  std::normal_distribution<double> z(0, 1);
  std::vector<double> domain_lib(s.n_domains), library(n);
  for (auto& f : domain_lib) f = std::exp(s.domain_library_sd * z(rng));
  for (int64_t i = 0; i < n; ++i) library[i] = domain_lib[out.domain[i]] * std::exp(s.library_sd * z(rng));
  // Complementary marked subsets: mod1 marks the first ceil(c1 K), mod2 the
  // last ceil(c2 K) of one random order of the domains.
  std::vector<int64_t> perm(s.n_domains);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  auto marked = [&](double cov, bool first) {
    std::vector<bool> m(s.n_domains, false);
    const int64_t c = static_cast<int64_t>(std::ceil(cov * s.n_domains - 1e-9));
    for (int64_t t = 0; t < c; ++t) m[perm[first ? t : s.n_domains - 1 - t]] = true;
    return m;
  };
  std::vector<std::string> names(n);
  for (int64_t i = 0; i < n; ++i) names[i] = absl::StrCat("spot_", i);
  // Separate streams per modality.
  std::mt19937_64 rng1(seed * 2 + 1001), rng2(seed * 2 + 1002);
  out.mod1 = MakeModality(rng1, s.mod1, out.domain, s.n_domains, marked(s.mod1.domain_coverage, true),
                          library, xy, names);
  out.mod2 = MakeModality(rng2, s.mod2, out.domain, s.n_domains, marked(s.mod2.domain_coverage, false),
                          library, xy, names);
  return out;
}

}  // namespace candies
