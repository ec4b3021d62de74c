#include "server/candies_backend.h"

#include <exception>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/cluster/cluster.h"
#include "core/io/h5ad.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/trained_model.h"
#include "core/report/report.h"
#include "core/runtime/cuda_memory.h"
#include "core/util/status_macros.h"
#include "server/log.h"
#include "server/store.h"

namespace candies::server {
namespace {

// A TrainedModel held by the daemon's registry.
class TrainedResident : public ResidentModel {
 public:
  explicit TrainedResident(std::shared_ptr<const TrainedModel> model)
      : model_(std::move(model)), info_(DescribeTrainedModel(*model_)) {}
  int64_t bytes() const override { return info_.bytes; }
  Info info() const override {
    Info i;
    i.low_quality = info_.low_quality;
    i.low_kind = info_.low_kind;
    i.high_kind = info_.high_kind;
    i.n_high_features = info_.n_high_features;
    i.n_low_features = info_.n_low_features;
    return i;
  }
  const std::shared_ptr<const TrainedModel>& model() const { return model_; }

 private:
  std::shared_ptr<const TrainedModel> model_;
  TrainedModelInfo info_;
};

absl::Status WriteAtomically(const AnnData& a, const std::string& path) {
  // Temp name + rename: a crash never leaves a half-written file behind.
  const std::string tmp = path + ".tmp";
  CANDIES_RETURN_IF_ERROR(WriteH5ad(a, tmp));
  return DurableRename(tmp, path);
}

absl::StatusOr<std::string> RunImpl(const JobSpec& spec, const ProgressSink& progress,
                                    const CancelToken* cancel) {
  PipelineOptions o = PipelineOptions::FromPreset(spec.preset);
  o.kind = spec.kind;
  o.low_quality = spec.low_quality;
  o.n_clusters = spec.n_clusters;
  o.labels_key = spec.labels_key;
  o.device = spec.device;
  o.seed = spec.seed;
  o.threads = spec.threads;
  if (spec.cluster_method.has_value()) o.cluster.method = *spec.cluster_method;  // else the preset's
  if (spec.model != nullptr) {
    const auto* resident = dynamic_cast<const TrainedResident*>(spec.model.get());
    if (resident == nullptr) return absl::InternalError("model: not a CANDIES trained model");
    o.pretrained = resident->model();
  }
  o.save_model_dir = spec.save_model_dir;
  ModalityInput m1, m2;
  m1.name = "mod1";
  m2.name = "mod2";
  m1.kind = spec.mod1_kind;
  m2.kind = spec.mod2_kind;
  CANDIES_ASSIGN_OR_RETURN(AnnData a1, ReadH5ad(spec.mod1_path));
  CANDIES_ASSIGN_OR_RETURN(AnnData a2, ReadH5ad(spec.mod2_path));
  m1.adata = std::make_shared<AnnData>(std::move(a1));
  m2.adata = std::make_shared<AnnData>(std::move(a2));
  CANDIES_ASSIGN_OR_RETURN(PipelineResult result, RunPipeline(m1, m2, o, progress, cancel));
  // The denoised matrix first: once the result file exists the job counts as done.
  if (result.denoised_expression != nullptr && !spec.denoised_path.empty()) {
    CANDIES_RETURN_IF_ERROR(WriteAtomically(*result.denoised_expression, spec.denoised_path));
  }
  const AnnData out = ResultToAnnData(result);
  if (!spec.report_path.empty()) {
    // Pictures and report are for people: a drawing failure is logged, the
    // job's science still succeeds (FetchResult "report" is then NOT_FOUND).
    absl::Status st = WriteJobReport(out, result.denoised_expression.get(), spec.pictures_dir,
                                     spec.report_path, absl::StrCat("candies job ", spec.id));
    if (!st.ok()) {
      const std::string error(st.message());
      LogLine("warn", "job report not written", {{"job", spec.id}, {"error", error}});
    }
  }
  CANDIES_RETURN_IF_ERROR(WriteAtomically(out, spec.result_path));
  return spec.result_path;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ResidentModel>> CandiesBackend::LoadModel(
    const std::string& dir) {
  try {
    CANDIES_ASSIGN_OR_RETURN(std::shared_ptr<const TrainedModel> m, LoadTrainedModel(dir, device_));
    return std::shared_ptr<const ResidentModel>(std::make_shared<TrainedResident>(std::move(m)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("model ", dir, ": ", e.what()));
  }
}

absl::StatusOr<std::string> CandiesBackend::Run(const JobSpec& spec, const ProgressSink& progress,
                                                const CancelToken* cancel) {
  absl::StatusOr<std::string> out;
  try {
    out = RunImpl(spec, progress, cancel);
  } catch (const std::exception& e) {  // c10::Error too: a CUDA error or out-of-memory fails the job
    out = absl::InternalError(absl::StrCat("job ", spec.id, ": ", e.what()));
  }
  // This job's peak is not kept reserved for the next one (no-op without CUDA).
  ReleaseCachedCudaMemory();
  return out;
}

}  // namespace candies::server
