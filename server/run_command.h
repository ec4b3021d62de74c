// Runs a command-line tool (sbatch, scontrol, scancel) to completion and
// collects what it printed, under a wall-clock timeout. The tool gets this
// process's environment (SLURM_CONF and the like), no stdin, and its own
// process group, killed when the timeout passes.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace candies::server {

struct CommandOutput {
  int exit_code = -1;  // -1 when a signal ended it
  int signal = 0;
  std::string out, err;  // stdout and stderr (each at most 1 MiB kept)
};

// `argv[0]`: a path, or a name looked up in PATH. Errors: the tool cannot be
// found or started, or it ran past `timeout_seconds` (then it was killed).
absl::StatusOr<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                         double timeout_seconds);

// The absolute path of `name` ("sbatch" via PATH, or "/opt/slurm/bin/sbatch"
// as it is); NotFound when it is no executable file.
absl::StatusOr<std::string> FindExecutable(const std::string& name);

}  // namespace candies::server
