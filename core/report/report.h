// The job report: one self-contained HTML page (pictures inline as base64 PNG
// data URIs, no external files) with the domain maps, the denoising's effect,
// loss curves, parameters, seconds per stage, metrics, the selected
// low-quality modality and why, warnings and the marker-feature table.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/io/anndata.h"
#include "core/plot/plots.h"

namespace candies {

// Marker features listed per domain in the report's table.
inline constexpr int kReportMarkersPerDomain = 5;

// The page for `result` (ResultToAnnData's layout) with `plots` inlined.
absl::StatusOr<std::string> JobReportHtml(const AnnData& result, const plot::JobPlots& plots,
                                          const std::string& title);

// Draws the pictures into `picture_dir` (WriteJobPlots) and writes the page to
// `html_path` atomically (temp + rename).
absl::Status WriteJobReport(const AnnData& result, const AnnData* denoised,
                            const std::string& picture_dir, const std::string& html_path,
                            const std::string& title);

}  // namespace candies
