// The pictures of a job (PNG, drawn with cairo): domain maps, the denoising's
// effect on marker features, training loss curves, the confusion matrix
// against known labels. `candies plot` and candiesd call WriteJobPlots.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/anndata.h"
#include "core/plot/canvas.h"

namespace candies::plot {

// scanpy's categorical palette (default_20), repeated past 20 categories.
Rgb CategoryColor(size_t i);
// The viridis colour map at t in [0, 1].
Rgb Viridis(double t);

// Spots at `xy` (N x 2, row-major) coloured by each map's categories, side by
// side, each with a legend and a scalebar in coordinate units.
absl::Status DomainMaps(const std::vector<float>& xy,
                        const std::vector<std::pair<std::string, const Column*>>& maps,
                        const std::string& path);
// One row per feature: (title, raw values, denoised values) as two spatial maps.
struct FeaturePair {
  std::string name;
  std::vector<float> raw, denoised;
};
absl::Status FeatureMaps(const std::vector<float>& xy, const std::vector<FeaturePair>& features,
                         const std::string& path);
// uns["candies"]["losses"]: one small panel per stage (loss against step).
absl::Status LossCurves(const UnsValue& losses, const std::string& path);
// Rows: true labels, columns: domains; cells shaded by the row fraction.
absl::Status ConfusionMatrix(const Column& truth, const Column& domains, const std::string& path);

// Number of marker features whose raw and denoised maps are drawn.
inline constexpr int kDenoisedFeaturesShown = 4;

struct JobPlots {
  std::vector<std::pair<std::string, std::string>> files;  // (picture name, path)
  std::vector<std::string> skipped;  // why a picture was not drawn (missing input)
};
// Every picture the result (ResultToAnnData's layout) and, when given, the
// denoised modality (X denoised, layers["raw"]) allow, written into `dir`:
// domains.png, domains_by_modality.png, denoising.png, losses.png, confusion.png.
absl::StatusOr<JobPlots> WriteJobPlots(const AnnData& result, const AnnData* denoised,
                                       const std::string& dir);

}  // namespace candies::plot
