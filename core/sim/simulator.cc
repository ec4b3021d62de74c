#include "core/sim/simulator.h"

#include <cmath>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace candies {

int32_t SimulatedDomain(int64_t row, int64_t col, int64_t grid) {
  // Four quadrants, one shape each (square, cross, diamond, triangle), like the
  // ggblocks factors; everything outside the shapes is background (0).
  const int64_t h = grid / 2;
  if (h < 1) return 0;
  const int64_t q = (row >= h ? 2 : 0) + (col >= h ? 1 : 0);
  const double r = static_cast<double>(row % h), c = static_cast<double>(col % h);
  const double m = h / 2.0 - 0.5;
  const double hh = static_cast<double>(h);
  bool inside = false;
  switch (q) {
    case 0: inside = r >= 3 && r < hh - 3 && c >= 3 && c < hh - 3; break;
    case 1: inside = std::abs(r - m) < 2.5 || std::abs(c - m) < 2.5; break;
    case 2: inside = std::abs(r - m) + std::abs(c - m) < hh / 2 - 1; break;
    default: inside = r >= 2 && c <= r && c >= 1 && r < hh - 1; break;
  }
  return inside ? static_cast<int32_t>(q + 1) : 0;
}

namespace {

absl::Status Check(bool ok, const char* field, const std::string& why) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("SimulatorOptions.", field, ": ", why));
}

// NB(mean mu, size r) as a gamma-Poisson mixture.
double SampleNb(std::mt19937_64& rng, double mu, double r) {
  std::gamma_distribution<double> gamma(r, mu / r);
  std::poisson_distribution<int64_t> pois(gamma(rng));
  return static_cast<double>(pois(rng));
}

AnnData MakeModality(std::mt19937_64& rng, const std::vector<int32_t>& domain,
                     const std::vector<float>& spatial, const std::vector<std::string>& names,
                     int64_t n_vars, const char* prefix, double bg_mean, double fold,
                     int64_t markers, double dispersion, double dropout, double noise_mean,
                     double noise_sd, bool clip) {
  const int64_t n = static_cast<int64_t>(domain.size());
  std::vector<float> x(static_cast<size_t>(n * n_vars));
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::normal_distribution<double> noise(noise_mean, noise_sd);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t lo = domain[i] * markers, hi = lo + markers;
    for (int64_t j = 0; j < n_vars; ++j) {
      const double mu = (j >= lo && j < hi) ? bg_mean * fold : bg_mean;
      double v = SampleNb(rng, mu, dispersion);
      if (dropout > 0 && unif(rng) < dropout) v = 0;
      v += noise(rng);
      if (clip && v < 0) v = 0;
      x[static_cast<size_t>(i * n_vars + j)] = static_cast<float>(v);
    }
  }
  AnnData a;
  a.X = Matrix::Dense(n, n_vars, std::move(x));
  a.obs.index = names;
  std::vector<std::string> labels(domain.size());
  for (size_t i = 0; i < domain.size(); ++i) labels[i] = absl::StrCat("domain", domain[i]);
  a.obs.Set(Column::Categorical("domain", labels));
  for (int64_t j = 0; j < n_vars; ++j) a.var.index.push_back(absl::StrCat(prefix, j));
  a.obsm["spatial"] = Matrix::Dense(n, 2, spatial);
  return a;
}

}  // namespace

absl::StatusOr<SimulatedData> Simulate(const SimulatorOptions& o) {
  for (const auto& s :
       {Check(o.grid >= 4, "grid", "must be >= 4"), Check(o.scale >= 1, "scale", "must be >= 1"),
        Check(o.n_domains == 5, "n_domains", "the shapes define exactly 5 domains"),
        Check(o.rna_markers_per_domain >= 0 && o.n_genes >= 5 * o.rna_markers_per_domain,
              "n_genes", "must be >= 5 * rna_markers_per_domain"),
        Check(o.protein_markers_per_domain >= 0 &&
                  o.n_proteins >= 5 * o.protein_markers_per_domain,
              "n_proteins", "must be >= 5 * protein_markers_per_domain"),
        Check(o.rna_dropout >= 0 && o.rna_dropout < 1, "rna_dropout", "must be in [0, 1)"),
        Check(o.rna_noise_sd >= 0, "rna_noise_sd", "must be >= 0"),
        Check(o.protein_noise_sd >= 0, "protein_noise_sd", "must be >= 0"),
        Check(o.rna_dispersion > 0, "rna_dispersion", "must be > 0"),
        Check(o.protein_dispersion > 0, "protein_dispersion", "must be > 0"),
        Check(o.rna_background_mean > 0 && o.rna_marker_fold > 0, "rna_background_mean",
              "means must be > 0"),
        Check(o.protein_background_mean > 0 && o.protein_marker_fold > 0,
              "protein_background_mean", "means must be > 0")}) {
    if (!s.ok()) return s;
  }
  const int64_t side = o.grid * o.scale;
  const int64_t n = side * side;
  SimulatedData out;
  out.domain.resize(static_cast<size_t>(n));
  std::vector<float> spatial(static_cast<size_t>(2 * n));
  std::vector<std::string> names(static_cast<size_t>(n));
  for (int64_t r = 0; r < side; ++r) {
    for (int64_t c = 0; c < side; ++c) {
      const int64_t i = r * side + c;
      out.domain[i] = SimulatedDomain(r % o.grid, c % o.grid, o.grid);
      spatial[2 * i] = static_cast<float>(c);
      spatial[2 * i + 1] = static_cast<float>(r);
      names[i] = absl::StrCat("spot_", r, "_", c);
    }
  }
  // Separate streams per modality so that changing one modality's options does
  // not change the other's draws.
  std::mt19937_64 rng_rna(o.seed * 2 + 1), rng_prot(o.seed * 2 + 2);
  out.rna = MakeModality(rng_rna, out.domain, spatial, names, o.n_genes, "gene", o.rna_background_mean,
                         o.rna_marker_fold, o.rna_markers_per_domain, o.rna_dispersion,
                         o.rna_dropout, o.rna_noise_mean, o.rna_noise_sd, o.clip_negative);
  out.protein = MakeModality(rng_prot, out.domain, spatial, names, o.n_proteins, "protein",
                             o.protein_background_mean, o.protein_marker_fold,
                             o.protein_markers_per_domain, o.protein_dispersion, 0.0,
                             o.protein_noise_mean, o.protein_noise_sd, o.clip_negative);
  return out;
}

}  // namespace candies
