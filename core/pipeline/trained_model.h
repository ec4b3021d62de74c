// A trained CANDIES model for one panel (the same features measured on another
// section): everything a new section needs to be denoised without retraining.
// It holds the high-quality modality's preprocessing state (selected features,
// PCA projection), its graph auto-encoder, the conditional DiT denoiser, and the
// low-quality modality's decoder (denoised embedding -> denoised expression).
//
// Owner: pipeline area. Consumers: core/pipeline (PipelineOptions::pretrained),
// `candies run --save-model/--load-model`, server (resident model registry).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace candies {

class TrainedModel;  // defined in trained_model.cc (LibTorch modules inside)

struct TrainedModelInfo {
  std::string low_quality;  // role of the denoised modality in training: "mod1" | "mod2"
  std::string low_kind;     // "rna" | "protein" | "atac"
  std::string high_kind;
  int64_t n_high_features = 0;  // input features the high-quality modality must provide
  int64_t n_low_features = 0;   // features of the denoised expression matrix
  int64_t bytes = 0;            // parameters + buffers (the registry's memory budget)
  std::string version;          // candies version that trained it
  std::string device;           // where its tensors live now
};

TrainedModelInfo DescribeTrainedModel(const TrainedModel& model);

// Writes `dir` (created if missing; files written to *.tmp and renamed).
absl::Status SaveTrainedModel(const TrainedModel& model, const std::string& dir);

// Reads a directory written by SaveTrainedModel onto `device` ("auto" | "cpu" |
// "cuda[:N]"). NotFound when `dir` has no model; InvalidArgument when corrupt.
absl::StatusOr<std::shared_ptr<const TrainedModel>> LoadTrainedModel(const std::string& dir,
                                                                     const std::string& device);

}  // namespace candies
