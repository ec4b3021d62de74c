// Contrastive graph integration of two modalities (ALGORITHM.md section 3).
//
// Owner: pipeline area. Consumers: core/pipeline, tests/models.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/util/progress.h"

namespace candies {

// The largest IntegrationOptions::ensemble accepted (time grows linearly with it).
inline constexpr int64_t kMaxIntegrationEnsemble = 16;

struct IntegrationOptions {
  int64_t out_dim = 64;
  int64_t epochs = 200;
  double lr = 1e-3;
  double temperature = 0.07;
  int64_t patience = 10;
  double min_delta = 1e-3;
  int64_t spatial_k = 3;
  int64_t feature_k = 20;
  // NT-Xent over all spots is O(N^2) memory; above this many spots it is
  // computed over random minibatches of this size (memory linear in N).
  int64_t contrastive_batch = 4096;
  // Integrations trained one after another from different initialisations
  // (the same generator stream, so a seed still fixes the result). With more
  // than one, the joint embedding is the top out_dim principal components of
  // their concatenated joint embeddings: the spread across initialisations
  // is larger than most hyperparameter effects (docs/SCIENCE.md, "Integration
  // ensemble"). 1 is the authors' single network.
  int64_t ensemble = 1;
};

// SimCLR NT-Xent between z1 and z2 (N x d each): row i of z1 and row i of z2 are
// the positive pair, every other row of both is a negative; cosine similarity
// over `temperature`; mean over the 2N anchors.
torch::Tensor NtXent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature);
// The same over a random partition of the spots into chunks of `batch` (the
// mean of the chunks' losses); equals NtXent when batch >= N. `perm` is a
// permutation of 0..N-1 (CPU or same device, int64).
torch::Tensor NtXentMinibatched(const torch::Tensor& z1, const torch::Tensor& z2,
                                double temperature, int64_t batch, const torch::Tensor& perm);

struct IntegrationGraphs {
  torch::Tensor spatial1, feature1, spatial2, feature2;  // sparse normalised N x N
};

struct IntegrationResult {
  torch::Tensor joint;      // N x out_dim CPU float32 (an ensemble: N x min(out_dim, N))
  torch::Tensor attention;  // N x 2 (spatial, feature) view weights, mean over the members
  std::vector<std::vector<double>> losses;  // per member, per epoch run
};

// Trains options.ensemble integration networks (sequentially, on `device`).
// Progress steps run over all members' epochs; cancellation is checked every epoch.
absl::StatusOr<IntegrationResult> TrainIntegration(const torch::Tensor& x1,
                                                   const torch::Tensor& x2,
                                                   const IntegrationGraphs& graphs,
                                                   const IntegrationOptions& options,
                                                   const torch::Device& device,
                                                   const ProgressSink& progress = {},
                                                   const CancelToken* cancel = nullptr);

}  // namespace candies
