// Graph auto-encoder per modality (ALGORITHM.md 2.1), with the ZINB heads of the
// RNA path.
//
// Owner: pipeline area. Consumers: core/pipeline, tests/models.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/util/progress.h"

namespace candies {

struct GaeOptions {
  int64_t hidden = 128;
  int64_t latent = 64;       // protein / atac
  int64_t rna_latent = 256;  // rna path (ZINB)
  double dropout = 0.1;
  int64_t epochs = 300;
  double lr = 1e-3;
  double mse_weight = 2.0;   // a
  double zinb_weight = 0.1;  // b
  int64_t spatial_k = 3;
};

// Mean ZINB negative log-likelihood of counts `x` under mean `mean`, dispersion
// `theta` and dropout probability `pi` (all the same shape), the scDeepCluster /
// CANDIES formulation with eps = 1e-10.
// `lgamma_x1` (optional) is lgamma(x + 1), a constant a training loop computes once.
torch::Tensor ZinbNll(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& theta,
                      const torch::Tensor& pi, const torch::Tensor& lgamma_x1 = {});

// A trained graph auto-encoder (its LibTorch module lives in gae.cc).
class GaeModel;

struct GaeResult {
  torch::Tensor embedding;          // N x latent, CPU float32 (eval mode, no dropout)
  std::vector<double> losses;       // per epoch actually run
  bool stopped_on_nan = false;      // the last good parameters were kept
  std::shared_ptr<GaeModel> model;  // the trained network (eval mode)
};

// Trains a GAE on `features` (N x d) with the normalised spatial adjacency `adj`
// (sparse N x N). When `counts` is defined (N x g, non-negative) the ZINB heads
// are added and the loss is a*MSE + b*ZINB NLL; `latent` picks the width.
// Progress events carry `stage`; cancellation is checked every epoch.
absl::StatusOr<GaeResult> TrainGae(const torch::Tensor& features, const torch::Tensor& counts,
                                   const torch::Tensor& adj, int64_t latent,
                                   const GaeOptions& options, const torch::Device& device,
                                   const std::string& stage, const ProgressSink& progress = {},
                                   const CancelToken* cancel = nullptr);

// Inference with a trained GAE (no gradients, eval mode). `features` must have
// the width the model was trained on; `adj` is the new section's normalised
// spatial adjacency. Returns CPU float32.
absl::StatusOr<torch::Tensor> GaeEncode(const GaeModel& model, const torch::Tensor& features,
                                        const torch::Tensor& adj, const torch::Device& device);
// The decoder: embedding -> reconstructed input features (N x d_in).
absl::StatusOr<torch::Tensor> GaeDecodeFeatures(const GaeModel& model, const torch::Tensor& z,
                                                const torch::Device& device);
// The ZINB mean head at size factor 1 (N x genes): expected counts of a spot of
// median library size. FailedPrecondition when the model has no ZINB heads.
absl::StatusOr<torch::Tensor> GaeDecodeMean(const GaeModel& model, const torch::Tensor& z,
                                            const torch::Device& device);
bool GaeHasZinb(const GaeModel& model);
int64_t GaeInputDim(const GaeModel& model);
int64_t GaeBytes(const GaeModel& model);

// `path` is one file (written via a temp file by the caller's directory logic).
absl::Status SaveGae(const GaeModel& model, const std::string& path);
absl::StatusOr<std::shared_ptr<GaeModel>> LoadGae(const std::string& path, const torch::Device& device);

}  // namespace candies
