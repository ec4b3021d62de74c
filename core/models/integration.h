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
  // Integrations from different initialisations, trained together as one
  // batched network whose result equals training them one after another from
  // the same generator stream (so a seed still fixes the result). With more
  // than one, the joint embedding is the top out_dim principal components of
  // their concatenated joint embeddings: the spread across initialisations
  // is larger than most hyperparameter effects (docs/SCIENCE.md, "Integration
  // ensemble"). 1 is the authors' single network.
  int64_t ensemble = 1;
  // The members are trained together in groups whose NT-Xent similarity
  // matrices (members x chunks x (2 chunk)^2 floats) would fit in this many
  // bytes; at least one member per group. Only memory and speed depend on it,
  // not the result (MembersTrainedTogether). The bound was sized for the
  // unfused loss, which held those matrices for the backward pass; the fused
  // one (core/models/ntxent.h) holds none, so it is now conservative.
  int64_t batched_members_bytes = int64_t{1} << 30;
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

// NtXent for M independent pairs at once: z1, z2 are M x N x d; returns the M
// losses (member k's equals NtXent(z1[k], z2[k])).
torch::Tensor NtXentBatched(const torch::Tensor& z1, const torch::Tensor& z2, double temperature);
// NtXentMinibatched for M pairs, member k partitioned by row k of `perms` (M x N).
torch::Tensor NtXentMinibatchedBatched(const torch::Tensor& z1, const torch::Tensor& z2,
                                       double temperature, int64_t batch,
                                       const torch::Tensor& perms);

struct IntegrationGraphs {
  torch::Tensor spatial1, feature1, spatial2, feature2;  // sparse normalised N x N
};

// How many ensemble members one batched network trains at once for N spots
// (1..options.ensemble), from batched_members_bytes.
int64_t MembersTrainedTogether(const IntegrationOptions& options, int64_t n);

struct IntegrationResult {
  torch::Tensor joint;      // N x out_dim CPU float32 (an ensemble: N x min(out_dim, N))
  torch::Tensor attention;  // N x 2 (spatial, feature) view weights, mean over the members
  std::vector<std::vector<double>> losses;  // per member, per epoch run
};

// Trains options.ensemble integration networks on `device`, as one batched
// network: member k starts from the weights the k-th of a sequential run would
// (the global generator after members 0..k-1 drew their weights and one
// permutation per epoch they ran) and gets only its own gradients, so the result
// equals a sequential run up to float rounding, and the generator is left where
// a sequential run leaves it. A member stopping early (patience) makes its
// successors restart from the weights a sequential run would have drawn.
// One progress event per member and epoch (the member's loss; within an epoch in
// member order), steps over all members' epochs; cancellation is checked with each.
absl::StatusOr<IntegrationResult> TrainIntegration(const torch::Tensor& x1,
                                                   const torch::Tensor& x2,
                                                   const IntegrationGraphs& graphs,
                                                   const IntegrationOptions& options,
                                                   const torch::Device& device,
                                                   const ProgressSink& progress = {},
                                                   const CancelToken* cancel = nullptr);

}  // namespace candies
