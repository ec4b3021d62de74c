// What a worker runs for one job. The scheduler knows nothing about CANDIES:
// it hands a JobSpec to a JobBackend (candies_backend.cc runs the pipeline;
// tests inject small backends that really compute).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/util/job_options.h"
#include "core/util/progress.h"

namespace candies::server {

// A trained model held in memory by the registry (server/model_registry.h).
// Opaque to the server: the backend that loaded it knows what is inside.
class ResidentModel {
 public:
  virtual ~ResidentModel() = default;
  virtual int64_t bytes() const = 0;  // memory it holds (the registry's budget)
  // What it was trained on: low_quality, low_kind, high_kind, n_high_features,
  // n_low_features (filled into v1::Model by the registry).
  struct Info {
    std::string low_quality, low_kind, high_kind;
    int64_t n_high_features = 0, n_low_features = 0;
  };
  virtual Info info() const = 0;
};

struct JobSpec {
  std::string id;
  std::string owner = "default";
  std::string mod1_path, mod2_path;  // .h5ad files of the two datasets
  // The settings, in the one vocabulary (core/util/job_options.h).
  ModalityKind mod1_kind = ModalityKind::kRna, mod2_kind = ModalityKind::kProtein;
  JobKind kind = JobKind::kFull;
  int64_t n_clusters = 0;
  LowQuality low_quality = LowQuality::kAuto;
  Preset preset = Preset::kFast;
  uint64_t seed = 0;
  std::string labels_key;
  // Where the job runs: the device of the scheduler's slot it took
  // (server/device_slots.h), "cpu" | "cuda:N", or without device-slots the
  // daemon's `device` ("auto" | "cpu" | "cuda" | "cuda:N").
  std::string device = "auto";
  // When the job must be done (the scheduler sets it from SubmitJob's
  // deadline_seconds; InfiniteFuture = none). executor = slurm asks for no
  // more --time than is left.
  absl::Time deadline = absl::InfiniteFuture();
  std::optional<ClusterMethod> cluster_method;  // none: the preset's
  int threads = 0;          // CPU threads for this job (0: backend default)
  std::string result_path;  // where the backend writes the result .h5ad
  // Where the backend writes the denoised low-quality modality (.h5ad), when
  // the job makes one.
  std::string denoised_path;
  // The job report (HTML, pictures inline) and its PNG pictures; empty: none.
  std::string report_path, pictures_dir;
  std::string model_id;  // a registry model to apply; the service resolves it into `model`
  std::shared_ptr<const ResidentModel> model;  // apply instead of training
  // The folder of model_id (Store::ModelDir): a worker process loads it from there.
  std::string model_dir;
  std::string save_model_dir;  // non-empty: save the trained model here
  // v1::WorkerTestFault: a fault for the worker to commit. Tests only: the
  // service never sets it, and ProcessBackend passes it on only when built
  // with allow_test_faults (server/process_backend.h).
  int test_fault = 0;
};

class JobBackend {
 public:
  virtual ~JobBackend() = default;
  // Runs the job to completion; returns the result file's path. Must check
  // `cancel` regularly and return absl::CancelledError when it fires.
  virtual absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                          const CancelToken* cancel) = 0;
  // Whether Run wants spec.model filled from the registry's resident copy
  // (in-process backends); a backend that runs jobs elsewhere loads
  // spec.model_dir itself.
  virtual bool uses_resident_models() const { return true; }
  // Called once when the daemon stops, before the scheduler cancels running
  // jobs: a backend whose jobs can outlive the daemon (executor = slurm) leaves
  // them running for the next start to take over instead of cancelling them.
  virtual void PrepareShutdown() {}
  // Reads a model directory written by a job's save_model_dir.
  virtual absl::StatusOr<std::shared_ptr<const ResidentModel>> LoadModel(const std::string& dir) {
    return absl::UnimplementedError(absl::StrCat("this backend has no trained models (", dir, ")"));
  }
};

}  // namespace candies::server
