// Reading Slurm's answers (no Slurm needed: pure text in, values out), and
// what each Slurm job state means for a candies job. Odd text is an error
// that quotes it, never a crash.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace candies::server {

// One job as `scontrol show job -o ID` prints it (the fields used here).
struct SlurmJob {
  std::string id;
  std::string state;   // JobState: "RUNNING", "COMPLETED", "NODE_FAIL", ...
  std::string reason;  // Reason: "None", "NonZeroExitCode", "Priority", ...
  int exit_code = 0;   // ExitCode=code:signal of the batch script
  int exit_signal = 0;
  std::string node_list;  // NodeList ("" or "(null)" while pending)
};

// `sbatch --parsable` prints "ID" or "ID;CLUSTER": returns ID.
absl::StatusOr<std::string> ParseSbatchJobId(absl::string_view output);

// The job `id` in `scontrol show job -o ID`'s output (one line per job, or the
// multi-line form). NotFound when Slurm no longer knows the job.
absl::StatusOr<SlurmJob> ParseScontrolJob(absl::string_view output, absl::string_view id);

// True when scontrol's error says the job id is unknown (finished jobs leave
// after MinJobAge): "slurm_load_jobs error: Invalid job id specified".
bool IsUnknownJobError(absl::string_view stderr_text);

// What a Slurm state means for the candies job that runs in it.
enum class SlurmOutcome {
  kActive,     // PENDING, RUNNING, CONFIGURING, COMPLETING, SUSPENDED, ...: keep following
  kCompleted,  // COMPLETED: the worker's own outcome decides
  kFailed,     // FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, DEADLINE, ...: FAILED with the reason
  kRetry,      // NODE_FAIL, PREEMPTED, BOOT_FAIL: submit again (up to max-attempts)
};
// Unknown state names are an error naming them.
absl::StatusOr<SlurmOutcome> ClassifySlurmState(absl::string_view state);

// The reason a job in a failed or retried state gives, for the job's error:
// "Slurm job 12 FAILED: the worker was killed by signal 9 (Killed)",
// "Slurm job 12 TIMEOUT: ran past its time limit (slurm-time-limit)", ...
std::string DescribeSlurmEnd(const SlurmJob& job);

}  // namespace candies::server
