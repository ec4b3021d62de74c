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
  int64_t max_memory_bytes = int64_t{4} << 30;  // RLIMIT_AS, on top of what a fork inherits; 0 = none
  // RLIMIT_DATA (private writable memory: heap, anonymous mappings); 0 = none.
  // Unlike RLIMIT_AS it does not count address space reserved but inaccessible
  // (PROT_NONE), which the CUDA driver reserves by the terabyte.
  int64_t max_data_bytes = 0;
  int cpu_seconds = 60;                         // RLIMIT_CPU (then SIGKILL); 0 = none
  int64_t max_file_bytes = 0;                   // RLIMIT_FSIZE: 0 = the child writes no file; < 0 = any
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

// A child started by StartSandboxed, still running: the caller writes its
// stdin through `in_fd`, reads `out_fd`/`err_fd`, closes all three and reaps
// `pid` (waitpid). Its process group is `pid`.
struct StartedChild {
  int pid = -1;
  int in_fd = -1, out_fd = -1, err_fd = -1;
};

// fork + exec like RunSandboxed (same rlimits, own process group, dies with the
// parent, no other descriptor inherited) but returns at once, with pipes to the
// child's stdin, stdout and stderr; `limits.wall_seconds` is the caller's to
// enforce. `inherit_environment`: the child gets this process's environment
// (CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS, ...) instead of PATH and LC_ALL only.
// `set_env`: "NAME=value" entries the child gets on top, replacing a variable
// of the same name ("NAME=" sets it empty).
absl::StatusOr<StartedChild> StartSandboxed(const std::vector<std::string>& argv,
                                            const SandboxLimits& limits,
                                            bool inherit_environment,
                                            const std::vector<std::string>& set_env = {});

// SIGKILL to the child's process group and to the child.
void KillProcessGroup(int pid);

}  // namespace candies
