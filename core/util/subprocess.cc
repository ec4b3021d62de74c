#include "core/util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace candies {
namespace {

// Bytes of address space the calling process maps now (a forked child starts
// with all of it, so RLIMIT_AS is set relative to it).
int64_t CurrentAddressSpace() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  statm >> pages;
  return pages * sysconf(_SC_PAGESIZE);
}

// In the child, before exec or work: only async-signal-safe calls.
// `in_fd` < 0: stdin is /dev/null.
// `parent`: the forking process's pid, taken before fork().
void LimitChild(pid_t parent, const SandboxLimits& limits, int64_t inherited_bytes, int in_fd,
                int out_fd, int err_fd) {
  setpgid(0, 0);  // its own process group, so a timeout kills what it spawned
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died between fork() and prctl(): then no signal will
  // come, and the child must not outlive it (a restarted daemon reruns its job).
  if (getppid() != parent) _exit(137);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  rlimit r;
  if (limits.max_memory_bytes > 0) {
    r.rlim_cur = r.rlim_max = static_cast<rlim_t>(inherited_bytes + limits.max_memory_bytes);
    setrlimit(RLIMIT_AS, &r);
  }
  if (limits.max_data_bytes > 0) {
    r.rlim_cur = r.rlim_max = static_cast<rlim_t>(limits.max_data_bytes);
    setrlimit(RLIMIT_DATA, &r);
  }
  if (limits.cpu_seconds > 0) {
    // The soft limit sends SIGXCPU, the hard one a second later SIGKILL.
    r.rlim_cur = static_cast<rlim_t>(limits.cpu_seconds);
    r.rlim_max = static_cast<rlim_t>(limits.cpu_seconds + 1);
    setrlimit(RLIMIT_CPU, &r);
  }
  if (limits.max_file_bytes >= 0) {
    r.rlim_cur = r.rlim_max = static_cast<rlim_t>(limits.max_file_bytes);
    setrlimit(RLIMIT_FSIZE, &r);
  }
  r.rlim_cur = r.rlim_max = 0;
  setrlimit(RLIMIT_CORE, &r);  // a crash on a hostile file leaves no core dump behind
  int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
  if (in >= 0) dup2(in, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  // Inherit nothing else (sockets, the database, other uploads).
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
  {
    for (int fd = 3; fd < 65536; ++fd) close(fd);
  }
}

struct Pipes {
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  ~Pipes() {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) close(fd);
    }
  }
};

// Reads both pipes until EOF or the deadline, then reaps the child.
SandboxResult Collect(pid_t pid, Pipes* p, const SandboxLimits& limits) {
  close(p->out[1]);
  close(p->err[1]);
  p->out[1] = p->err[1] = -1;
  SandboxResult result;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(limits.wall_seconds * 1000));
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{out_open ? p->out[0] : -1, POLLIN, 0}, {err_open ? p->err[0] : -1, POLLIN, 0}};
    int rc = poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      if (i == 0) {
        const size_t room = static_cast<size_t>(limits.max_output_bytes) - result.output.size();
        result.output.append(buf, std::min(room, static_cast<size_t>(n)));
      } else {
        result.errors.append(buf, static_cast<size_t>(n));
        if (result.errors.size() > 8192) result.errors.erase(0, result.errors.size() - 4096);
      }
    }
  }
  int status = 0;
  // The pipes closed (or the child was killed): it is exiting; reap it. A child
  // that closed its stdout but keeps running is killed at the deadline.
  while (true) {
    pid_t w = waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (w == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        result.timed_out = true;
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
      } else {
        usleep(2000);
      }
    }
  }
  if (result.errors.size() > 4096) result.errors.erase(0, result.errors.size() - 4096);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

absl::Status MakePipes(Pipes* p) {
  if (pipe2(p->out, O_CLOEXEC) != 0 || pipe2(p->err, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("sandbox: pipe: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SandboxResult::Describe() const {
  if (timed_out) return "timed out (killed)";
  if (signal != 0) {
    if (signal == SIGKILL || signal == SIGXCPU) {
      return absl::StrCat("killed by signal ", signal, " (", strsignal(signal),
                          "; CPU or memory limit?)");
    }
    return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")");
  }
  return absl::StrCat("exited with code ", exit_code);
}

absl::StatusOr<SandboxResult> RunSandboxed(const std::vector<std::string>& argv,
                                           const SandboxLimits& limits) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError("sandbox: argv[0] must be an absolute path");
  }
  // Everything exec needs is built before fork.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char* env[] = {const_cast<char*>("PATH=/usr/bin:/bin"), const_cast<char*>("LC_ALL=C"), nullptr};
  Pipes p;
  absl::Status st = MakePipes(&p);
  if (!st.ok()) return st;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("sandbox: fork: ", std::strerror(errno)));
  if (pid == 0) {
    LimitChild(parent, limits, 0, -1, p.out[1], p.err[1]);
    execve(args[0], args.data(), env);
    const char msg[] = "sandbox: exec failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  SandboxResult r = Collect(pid, &p, limits);
  if (r.exit_code == 127 && r.errors.find("sandbox: exec failed") != std::string::npos) {
    return absl::FailedPreconditionError(absl::StrCat("sandbox: cannot execute ", argv[0]));
  }
  return r;
}

absl::StatusOr<SandboxResult> RunInChild(const std::function<int(int out_fd)>& work,
                                         const SandboxLimits& limits) {
  Pipes p;
  absl::Status st = MakePipes(&p);
  if (!st.ok()) return st;
  const int64_t inherited = CurrentAddressSpace();
  std::fflush(nullptr);  // the child must not flush the parent's buffered output again
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("sandbox: fork: ", std::strerror(errno)));
  if (pid == 0) {
    LimitChild(parent, limits, inherited, -1, p.out[1], p.err[1]);
    int rc = work(1);
    std::fflush(nullptr);
    _exit(rc);
  }
  return Collect(pid, &p, limits);
}

absl::StatusOr<StartedChild> StartSandboxed(const std::vector<std::string>& argv,
                                            const SandboxLimits& limits,
                                            bool inherit_environment,
                                            const std::vector<std::string>& set_env) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError("sandbox: argv[0] must be an absolute path");
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child's environment, built before fork: the base (inherited or
  // minimal) without the names set_env replaces, then set_env.
  std::vector<std::string> base;
  if (inherit_environment) {
    for (char** e = environ; *e != nullptr; ++e) base.emplace_back(*e);
  } else {
    base = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
  }
  auto name = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env_strings;
  for (const std::string& e : base) {
    const bool replaced = std::any_of(set_env.begin(), set_env.end(),
                                      [&](const std::string& s) { return name(s) == name(e); });
    if (!replaced) env_strings.push_back(e);
  }
  env_strings.insert(env_strings.end(), set_env.begin(), set_env.end());
  std::vector<char*> env_ptrs;
  for (const std::string& e : env_strings) env_ptrs.push_back(const_cast<char*>(e.c_str()));
  env_ptrs.push_back(nullptr);
  char** env = env_ptrs.data();
  Pipes p;
  if (absl::Status st = MakePipes(&p); !st.ok()) return st;
  if (pipe2(p.in, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("sandbox: pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("sandbox: fork: ", std::strerror(errno)));
  if (pid == 0) {
    LimitChild(parent, limits, 0, p.in[0], p.out[1], p.err[1]);
    execve(args[0], args.data(), env);
    const char msg[] = "sandbox: exec failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  StartedChild c;
  c.pid = pid;
  c.in_fd = p.in[1];
  c.out_fd = p.out[0];
  c.err_fd = p.err[0];
  p.in[1] = p.out[0] = p.err[0] = -1;  // the caller's now; the child's ends close with `p`
  return c;
}

void KillProcessGroup(int pid) {
  if (pid <= 0) return;
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

}  // namespace candies
