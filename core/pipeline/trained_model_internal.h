// The inside of a TrainedModel (core/pipeline/trained_model.h), for the
// pipeline that builds and applies it and for tests; other areas see only the
// opaque type.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "core/models/diffusion.h"
#include "core/models/gae.h"
#include "core/pipeline/trained_model.h"
#include "core/preprocess/preprocess.h"

namespace candies {

class TrainedModel {
 public:
  std::string low_quality;  // role of the denoised modality: "mod1" | "mod2"
  ModalityKind low_kind = ModalityKind::kRna;
  ModalityKind high_kind = ModalityKind::kProtein;
  double target_sum = 1e4;  // the preprocessing recipe (normalize_total, scale)
  double scale_max = 10.0;
  int64_t spatial_k = 3;    // the GAE's spatial graph

  // High-quality modality: expression columns, PCA loadings (d x c) and encoder.
  std::vector<std::string> high_features;
  torch::Tensor high_loadings;
  std::shared_ptr<GaeModel> high_gae;
  // The conditional DiT: high-quality embedding -> denoised low-quality embedding.
  std::shared_ptr<TrainedDenoiser> denoiser;
  // Low-quality modality: decoder, its PCA loadings and the denoised matrix's columns.
  std::shared_ptr<GaeModel> low_gae;
  torch::Tensor low_loadings;
  std::vector<std::string> low_features;

  std::string version = CANDIES_VERSION;
  std::string device = "cpu";
};

// Loadings V (d x c, CPU float32) with features ~= expression V, recovered from
// a PCA's input (column-centred, N x d) and output (N x c): V = X^T F (F^T F)^-1,
// exact when F = X V with orthonormal V (principal axes).
torch::Tensor PcaLoadings(const torch::Tensor& expression, const torch::Tensor& features);

// The pretrained decoder applied to a (denoised) low-quality embedding: the ZINB
// mean at median library size for RNA (denoised counts of the selected genes),
// otherwise the reconstructed PCA features mapped back through the loadings
// (scaled CLR units for protein). N x low_features.size(), CPU float32.
absl::StatusOr<torch::Tensor> DecodeExpression(const GaeModel& low_gae, const torch::Tensor& low_loadings,
                                               const torch::Tensor& z, const torch::Device& device);

}  // namespace candies
