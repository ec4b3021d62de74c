#include "server/candies_backend.h"

#include <exception>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/io/h5ad.h"
#include "core/pipeline/pipeline.h"
#include "core/util/status_macros.h"
#include "server/store.h"

namespace candies::server {
namespace {

// v1::ModalityKind numbers (candies.proto); UNSPECIFIED takes the CLI's
// defaults: mod1 RNA, mod2 protein.
ModalityKind KindOf(int proto_kind, ModalityKind fallback) {
  switch (proto_kind) {
    case 1: return ModalityKind::kRna;
    case 2: return ModalityKind::kProtein;
    case 3: return ModalityKind::kAtac;
    default: return fallback;
  }
}

absl::StatusOr<std::string> RunImpl(const JobSpec& spec, const ProgressSink& progress,
                                    const CancelToken* cancel) {
  CANDIES_ASSIGN_OR_RETURN(Preset preset, ParsePreset(spec.preset));
  PipelineOptions o = PipelineOptions::FromPreset(preset);
  CANDIES_ASSIGN_OR_RETURN(o.kind, ParseJobKind(spec.kind));
  CANDIES_ASSIGN_OR_RETURN(o.low_quality, ParseLowQuality(spec.low_quality));
  o.n_clusters = spec.n_clusters;
  o.labels_key = spec.labels_key;
  o.device = spec.device;
  o.seed = spec.seed;
  ModalityInput m1, m2;
  m1.name = "mod1";
  m2.name = "mod2";
  m1.kind = KindOf(spec.mod1_kind, ModalityKind::kRna);
  m2.kind = KindOf(spec.mod2_kind, ModalityKind::kProtein);
  CANDIES_ASSIGN_OR_RETURN(AnnData a1, ReadH5ad(spec.mod1_path));
  CANDIES_ASSIGN_OR_RETURN(AnnData a2, ReadH5ad(spec.mod2_path));
  m1.adata = std::make_shared<AnnData>(std::move(a1));
  m2.adata = std::make_shared<AnnData>(std::move(a2));
  CANDIES_ASSIGN_OR_RETURN(PipelineResult result, RunPipeline(m1, m2, o, progress, cancel));
  // Temp name + rename: a crash never leaves a half-written result behind.
  const std::string tmp = spec.result_path + ".tmp";
  CANDIES_RETURN_IF_ERROR(WriteH5ad(ResultToAnnData(result), tmp));
  CANDIES_RETURN_IF_ERROR(DurableRename(tmp, spec.result_path));
  return spec.result_path;
}

}  // namespace

absl::StatusOr<std::string> CandiesBackend::Run(const JobSpec& spec, const ProgressSink& progress,
                                                const CancelToken* cancel) {
  try {
    return RunImpl(spec, progress, cancel);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("job ", spec.id, ": ", e.what()));
  }
}

}  // namespace candies::server
