// The spatial neighbourhood a section's layout implies (issue 13): lattices
// get their natural ring of neighbours, irregular positions a fixed k.
//
// Owner: graph area. Consumers: pipeline (spatial_k = 0: derived), bench/quality.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace candies {

struct LayoutNeighbours {
  bool lattice = false;   // nearest-neighbour distances (nearly) all equal
  double spacing = 0;     // median nearest-neighbour distance
  int64_t k = 0;          // the neighbourhood size the rule picks
};

// The rule: d = the median distance of a spot to its nearest other spot. The
// layout is a lattice when at least `kLatticeShare` (90%) of the spots have
// their nearest neighbour within 5% of d; then k = the median number of spots
// within `radius` x d (radius 1.2: 4 on a square grid, 6 on a hexagonal
// lattice; 1.5: 8 on a grid, 6 on hex). Irregular layouts (uniform random,
// cell-like clusters) get `irregular_k`. k is capped at n - 1.
absl::StatusOr<LayoutNeighbours> DeriveLayoutNeighbours(const std::vector<float>& coords,
                                                        int64_t n, double radius = 1.2,
                                                        int64_t irregular_k = 6);

inline constexpr double kLatticeShare = 0.9;

}  // namespace candies
