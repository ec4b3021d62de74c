// The JobBackend of `executor = slurm` (docs/SERVICE.md, "Slurm"): each job
// runs the same candies-worker as executor = process, but as a Slurm batch
// job on a cluster node that shares the data directory (same path on every
// node). The daemon writes the job (a framed WorkerJob, server/worker_protocol.h)
// into <data-dir>/slurm/<job id>/, submits it with `sbatch`, and follows it by
// reading the worker's report stream from that folder (progress and the
// outcome) and polling `scontrol show job -o ID` for the Slurm state. Cancel,
// a deadline and worker-timeout-seconds run `scancel`. Slurm states map to
// job states as server/slurm_state.h says; NODE_FAIL, PREEMPTED and
// BOOT_FAIL submit the job again, up to max-attempts runs in all. When the
// daemon stops, its Slurm jobs go on running; the next start (which requeues
// the job) finds the Slurm job id in the job's folder and follows that job
// instead of submitting again.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "server/backend.h"
#include "server/slurm_state.h"

namespace candies::server {

struct SlurmBackendOptions {
  // One folder per job under here; must be on the disk the nodes share.
  std::string work_dir;
  std::string worker;  // the worker binary as the nodes see it; "" = beside candiesd
  // sbatch's requests (config keys slurm-partition, ...); "" = the cluster's default.
  std::string partition, account;
  std::string time_limit;  // --time (e.g. "120", "1-00:00:00")
  std::string memory;      // --mem (e.g. "16G")
  std::string gres;        // --gres for jobs whose device is not "cpu" (e.g. "gpu:1")
  int cpus_per_task = 4;   // --cpus-per-task, and the job's threads when it asks for none
  int poll_milliseconds = 1000;  // how often the report file and scontrol are read
  std::string sbatch = "sbatch", scontrol = "scontrol", scancel = "scancel";
  int max_attempts = 2;  // submissions of one job (NODE_FAIL/PREEMPTED/BOOT_FAIL retry)
  int64_t timeout_seconds = int64_t{24} * 3600;  // worker-timeout-seconds; 0 = none
  double command_timeout_seconds = 60;   // one sbatch/scontrol/scancel call
  int64_t unreachable_seconds = 600;     // scontrol failing this long in a row: FAILED
  int64_t result_wait_seconds = 30;      // COMPLETED, the outcome not yet in the shared file
  // Passes JobSpec::test_fault on and starts workers with --allow-test-faults.
  // Tests only: no config key sets it.
  bool allow_test_faults = false;
};

class SlurmBackend : public JobBackend {
 public:
  // `loader` loads models for the daemon's registry (LoadModel); may be null.
  SlurmBackend(SlurmBackendOptions options, JobBackend* loader);
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override;
  bool uses_resident_models() const override { return false; }
  absl::StatusOr<std::shared_ptr<const ResidentModel>> LoadModel(const std::string& dir) override;
  void PrepareShutdown() override { detaching_ = true; }

  // The sbatch command line for a job whose files are in `job_dir`.
  std::vector<std::string> SbatchArgs(const JobSpec& spec, const std::string& job_dir) const;

 private:
  class ReportTail;  // the worker's report file, read as it grows (slurm_backend.cc)
  // The files the node reads: the framed WorkerJob and the batch script.
  absl::Status WriteJobFiles(const JobSpec& spec, const std::string& job_dir) const;
  // One submission (or, with `adopt`, the Slurm job an earlier daemon
  // submitted); `*retry` is set when Slurm ended it in a state worth another,
  // `*detached` when the daemon stopped and left it running.
  absl::StatusOr<std::string> RunOnce(const JobSpec& spec, const std::string& job_dir, int attempt,
                                      const std::string& adopt, const ProgressSink& progress,
                                      const CancelToken* cancel, bool* retry, bool* detached);
  // The Slurm job an earlier daemon left for this job, when it is worth
  // following: Slurm still knows it, or its worker reported an outcome ("": none).
  std::string Adoptable(const std::string& job_dir) const;
  absl::StatusOr<std::string> Submit(const JobSpec& spec, const std::string& job_dir, int attempt,
                                     const ProgressSink& progress) const;  // the Slurm job id
  // Follows a submitted job until Slurm ends it. An error is the job's own
  // (cancelled, timed out, unreadable answers), except NotFound with
  // `*forgotten` set: Slurm no longer knows the job.
  absl::StatusOr<SlurmJob> Follow(const std::string& slurm_id, ReportTail& reports,
                                  const CancelToken* cancel, bool* forgotten, bool* detached) const;
  // scancel, a bounded wait for the end, and the job's error.
  absl::Status Stop(const std::string& slurm_id, bool timed_out) const;
  absl::StatusOr<SlurmJob> Query(const std::string& slurm_id) const;
  void Cancel(const std::string& slurm_id) const;

  const SlurmBackendOptions options_;
  JobBackend* const loader_;
  std::atomic<bool> detaching_{false};  // PrepareShutdown was called
};

}  // namespace candies::server
