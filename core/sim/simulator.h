// The paper's simulated RNA + protein benchmark (ALGORITHM.md section 5): a grid
// of spots with five domains (four ggblocks-like shapes + background), ZINB RNA
// counts and NB protein counts with domain markers, then additive Gaussian noise.
//
// Owner: pipeline area. Consumers: `candies simulate`, tests, bench/quality.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/anndata.h"

namespace candies {

// Every number of the generator. The defaults are the built-in demo data and were
// calibrated (docs/SCIENCE.md) so that clustering the raw RNA alone gives an ARI
// near 0.25 and the raw protein alone a clearly better but imperfect one.
struct SimulatorOptions {
  int64_t grid = 36;    // grid x grid spots per tile
  int64_t scale = 1;    // tiles per side: scale^2 * grid^2 spots (for large-N runs)
  int64_t n_genes = 800;
  int64_t n_proteins = 100;
  int64_t n_domains = 5;  // fixed by the shapes: background + 4 blocks
  // RNA: negative binomial (size = rna_dispersion) with zero inflation.
  double rna_background_mean = 0.5;
  double rna_marker_fold = 8.75;  // marker genes' mean = background * fold in their domain
  int64_t rna_markers_per_domain = 30;
  double rna_dispersion = 3.0;
  double rna_dropout = 0.3;        // pi: probability that a count is zeroed
  double rna_noise_mean = 2.0;
  double rna_noise_sd = 3.0;
  // Protein: negative binomial, no zero inflation.
  double protein_background_mean = 2.0;
  double protein_marker_fold = 2.4;
  int64_t protein_markers_per_domain = 10;
  double protein_dispersion = 3.0;
  double protein_noise_mean = 2.0;
  double protein_noise_sd = 1.0;
  // Noisy values below zero are set to zero (counts-like input for normalize_total/CLR).
  bool clip_negative = true;
  uint64_t seed = 0;
};

struct SimulatedData {
  AnnData rna;      // X dense float32; obs["domain"] categorical; obsm["spatial"]
  AnnData protein;  // same obs and obsm
  std::vector<int32_t> domain;  // truth per spot, 0 = background
};

// The domain (0..4) of cell (row, col) of a grid x grid tile.
int32_t SimulatedDomain(int64_t row, int64_t col, int64_t grid);

// Deterministic for a given options.seed (std::mt19937_64). InvalidArgument
// names the field when an option is out of range.
absl::StatusOr<SimulatedData> Simulate(const SimulatorOptions& options);

}  // namespace candies
