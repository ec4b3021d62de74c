// Pieces of RunPipeline that are not stages: checking and aligning the two
// modalities' inputs (pipeline_inputs.cc), and validating and recording the
// options (pipeline_options.cc).
//
// Owner: pipeline area. Consumers: pipeline.cc only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/anndata.h"
#include "core/pipeline/pipeline.h"

namespace candies {

// X present, non-empty, with variance; obsm["spatial"] n_obs x >= 2. Errors
// name `role` ("mod1") and the modality's name.
absl::Status CheckModality(const ModalityInput& m, const char* role);

// The first two columns of obsm["spatial"], N x 2 row-major.
std::vector<float> Coords(const AnnData& a);

// Row i of mod1 is row order[i] of mod2. By obs name; when no name is shared,
// by exact coordinates. Unmatched spots are an error, never silently dropped.
absl::StatusOr<std::vector<int64_t>> MatchSpots(const AnnData& a1, const AnnData& a2);

// X, obs names and obsm["spatial"] of `a`'s rows in the given order.
AnnData ReorderRows(const AnnData& a, const std::vector<int64_t>& rows);

// obs[key] of mod1 (else mod2, through `order`) as 0-based codes; the values
// themselves go to *names when given.
absl::StatusOr<std::vector<int32_t>> TruthLabels(const AnnData& a1, const AnnData* a2,
                                                 const std::vector<int64_t>& order,
                                                 const std::string& key,
                                                 std::vector<std::string>* names);

// Every numeric setting in its documented range for a section of n spots;
// the error names the field.
absl::Status ValidatePipelineOptions(const PipelineOptions& options, int64_t n);

// uns["candies"]["params"].
UnsValue PipelineParams(const PipelineOptions& options);

}  // namespace candies
