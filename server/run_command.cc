#include "server/run_command.h"

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/subprocess.h"

namespace candies::server {
namespace {

constexpr size_t kMaxKept = size_t{1} << 20;

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

absl::StatusOr<std::string> FindExecutable(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("empty program name");
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) return name;
    return absl::NotFoundError(absl::StrCat(name, ": no executable file there"));
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view d : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    if (d.empty()) continue;
    std::string candidate = absl::StrCat(d, "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, ": not found in PATH"));
}

absl::StatusOr<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                         double timeout_seconds) {
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: no program");
  absl::StatusOr<std::string> program = FindExecutable(argv[0]);
  if (!program.ok()) return program.status();
  std::vector<std::string> args = argv;
  args[0] = *program;
  SandboxLimits limits;
  limits.max_memory_bytes = 0;
  limits.cpu_seconds = 0;
  limits.max_file_bytes = -1;
  absl::StatusOr<StartedChild> child = StartSandboxed(args, limits, /*inherit_environment=*/true);
  if (!child.ok()) {
    return absl::UnavailableError(absl::StrCat(argv[0], ": cannot start: ", child.status().message()));
  }
  close(child->in_fd);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_seconds));
  CommandOutput result;
  int fds[2] = {child->out_fd, child->err_fd};
  std::string* into[2] = {&result.out, &result.err};
  bool timed_out = false;
  char chunk[16384];
  while (fds[0] >= 0 || fds[1] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      KillProcessGroup(child->pid);
      break;
    }
    pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    if (poll(p, 2, static_cast<int>(std::min<int64_t>(left.count(), 100))) < 0 && errno != EINTR) {
      KillProcessGroup(child->pid);
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || (p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i], chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[i]);
        fds[i] = -1;
        continue;
      }
      if (into[i]->size() < kMaxKept) into[i]->append(chunk, static_cast<size_t>(n));
    }
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  while (waitpid(child->pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat(argv[0], ": lost track of the process"));
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], ": no answer within ", timeout_seconds, " s (killed)"));
  }
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace candies::server
