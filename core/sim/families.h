// Tissue families for the accuracy benchmark (issue 13, docs/SCIENCE.md
// "Tissue families"): each family is a recipe (layout, domain structure, two
// modalities with their noise, library-size variation) and every seed draws a
// new section from it: new shapes, positions, marker sets and counts.
//
// Families are split into TUNING families (defaults may be chosen on them) and
// HELD-OUT families (only measured); the split is part of the spec.
//
// Owner: pipeline area. Consumers: `candies simulate --family`, bench_families, tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/io/anndata.h"

namespace candies {

enum class FamilyLayout {
  kGrid,     // square lattice, spacing 1 (DBiT-seq, SPOTS-like arrays)
  kHex,      // hexagonal lattice, 6 neighbours at distance 1 (10x Visium)
  kUniform,  // uniform random positions, density 1 (Slide-seq beads)
  kCells,    // clustered density: spots where cells are (Stereo-seq cell bins)
};
enum class FamilyStructure {
  kBlocks,  // shapes (rectangle, ellipse, diamond, triangle, cross) on a background
  kLayers,  // parallel, gently curved bands (cortex layers)
  kRings,   // concentric rings around a centre, background outside
};

// One modality's generative model: negative binomial counts around a mean
// that is background_mean x (per-feature log-normal spread) x marker_fold on
// the domain's markers x the spot's library size; then zero inflation
// (dropout), additive Gaussian noise, and clipping at 0.
struct FamilyModality {
  std::string kind = "rna";  // "rna" | "protein" | "atac" (file name and pipeline kind)
  int64_t n_features = 800;
  int64_t markers_per_domain = 30;  // drawn at random per domain (sets may overlap on small panels)
  double background_mean = 0.5;
  double feature_mean_sd = 0.3;  // log-scale sd of the features' background means
  double marker_fold = 8.75;
  // Fraction of the domains that have markers in this modality (the others look
  // like the background here). The two modalities mark complementary subsets
  // (first vs last ceil(coverage * K) of one random order of the domains).
  double domain_coverage = 1.0;
  double dispersion = 3.0;
  double dropout = 0.3;
  double noise_mean = 2.0;
  double noise_sd = 3.0;
};

struct FamilySpec {
  std::string name;
  std::string imitates;  // the real technology and tissue it stands for
  bool held_out = false;
  FamilyLayout layout = FamilyLayout::kGrid;
  int64_t n_spots = 1296;  // approximate for the lattices (rounded to full rows)
  double jitter = 0;       // sd of Gaussian jitter of lattice positions, in spacings
  FamilyStructure structure = FamilyStructure::kBlocks;
  int64_t n_domains = 5;     // including background and the island domain
  double shape_scale = 0.8;  // blocks: shape half-size / half-cell (small: large background)
  double island_fraction = 0;  // > 0: one domain of small discs holding this share of spots
  double library_sd = 0.2;         // log-normal sd of the spots' library sizes
  double domain_library_sd = 0.1;  // log-normal sd of a per-domain library factor
  FamilyModality mod1;
  FamilyModality mod2;
};

struct FamilyData {
  AnnData mod1;  // X dense float32; obs["domain"] categorical; obsm["spatial"]
  AnnData mod2;  // same spots, obs and obsm
  std::vector<int32_t> domain;  // truth per spot, 0..n_domains-1
};

// Every family, tuning ones first.
const std::vector<FamilySpec>& Families();
// NotFound lists the known names.
absl::StatusOr<FamilySpec> FindFamily(absl::string_view name);

// Deterministic for (spec, seed). InvalidArgument names the field when the
// spec is out of range; Internal if a domain came out empty.
absl::StatusOr<FamilyData> SimulateFamily(const FamilySpec& spec, uint64_t seed);

// Layouts and structures alone (tests, error maps). Coordinates are N x 2
// row-major; the domain of each position for unit-square coordinates (u, v).
std::vector<float> FamilyPositions(const FamilySpec& spec, uint64_t seed);
std::vector<int32_t> FamilyDomains(const FamilySpec& spec, const std::vector<float>& xy,
                                   uint64_t seed);

const char* FamilyLayoutName(FamilyLayout layout);
const char* FamilyStructureName(FamilyStructure structure);

}  // namespace candies
