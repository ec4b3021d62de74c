// A small sandbox for work that may crash, hang or exhaust memory: parsing an
// untrusted file. The work runs in a child process under rlimits (address
// space, CPU seconds, file size) and a wall-clock timeout after which the child
// is killed; its stdout comes back over a pipe, and an exit by signal is
// reported ("killed by signal 11 (Segmentation fault)") instead of taking the
// caller down. Crashes inside libhdf5 cannot be fixed in our code; this
// contains them. Linux only (fork, pipes, prctl).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace candies {

struct SandboxLimits {
  int64_t max_memory_bytes = int64_t{4} << 30;  // RLIMIT_AS, on top of what a fork inherits
  int cpu_seconds = 60;                         // RLIMIT_CPU (then SIGKILL)
  int64_t max_file_bytes = 0;                   // RLIMIT_FSIZE: 0 = the child writes no file
  double wall_seconds = 120;                    // then the child's process group is killed
  int64_t max_output_bytes = int64_t{1} << 20;  // stdout kept; the rest is drained
};

struct SandboxResult {
  int exit_code = -1;      // when the child exited
  int signal = 0;          // when a signal ended it (SIGKILL also for the CPU limit)
  bool timed_out = false;  // wall_seconds passed and the child was killed
  std::string output;      // the child's stdout (at most max_output_bytes)
  std::string errors;      // the last 4 KiB of its stderr

  bool ok() const { return exit_code == 0 && signal == 0 && !timed_out; }
  // "exited with code 1", "killed by signal 11 (Segmentation fault)",
  // "timed out after 120 s (killed)".
  std::string Describe() const;
};

// fork + exec of argv[0] (an absolute path) with argv; stdin is /dev/null, no
// other descriptor is inherited, and the child dies with the parent. Safe to
// call from a multi-threaded process (only async-signal-safe calls before exec).
absl::StatusOr<SandboxResult> RunSandboxed(const std::vector<std::string>& argv,
                                           const SandboxLimits& limits);

// fork without exec: `work` runs in the child, writes its result to the given
// descriptor, and returns the exit code. Only for single-threaded callers (the
// CLI): after fork only the calling thread exists in the child.
absl::StatusOr<SandboxResult> RunInChild(const std::function<int(int out_fd)>& work,
                                         const SandboxLimits& limits);

}  // namespace candies
