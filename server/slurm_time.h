// Slurm time limits (sbatch --time): reading the forms the config key
// slurm-time-limit takes, and a job's own limit from its deadline.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace candies::server {

// Seconds of a Slurm time: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS,
// DAYS-HOURS, DAYS-HOURS:MINUTES or DAYS-HOURS:MINUTES:SECONDS (digits only).
// Errors quote the text.
absl::StatusOr<int64_t> ParseSlurmTime(absl::string_view text);

// The --time value for a job: `configured` (slurm-time-limit, "" = none, must
// parse) unless the job's deadline, `remaining_seconds` away (< 0: no
// deadline), comes first; then the remaining time rounded up to whole
// minutes (at least 1). "" = no --time at all.
std::string SlurmTimeForJob(const std::string& configured, double remaining_seconds);

}  // namespace candies::server
