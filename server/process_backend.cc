#include "server/process_backend.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/util/subprocess.h"
#include "server/device_slots.h"
#include "server/worker_protocol.h"

namespace candies::server {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Why the daemon killed a worker (kNone: it ended on its own).
enum class Kill { kNone, kCancelled, kTimeout, kProtocol };

// The last non-empty line of the worker's stderr, for error messages.
std::string LastLine(const std::string& tail) {
  absl::string_view t = absl::StripTrailingAsciiWhitespace(tail);
  const size_t nl = t.rfind('\n');
  if (nl != absl::string_view::npos) t.remove_prefix(nl + 1);
  if (t.size() > 300) t = t.substr(t.size() - 300);
  return std::string(t);
}

std::string MemoryLimit(int64_t bytes) {
  return bytes > 0 ? absl::StrCat("limit ", bytes, " bytes, worker-max-memory-bytes")
                   : "no worker-max-memory-bytes limit";
}

}  // namespace

ProcessBackend::ProcessBackend(ProcessBackendOptions options, JobBackend* loader)
    : options_(std::move(options)), loader_(loader) {
  // A worker that dies before reading its job must not take the daemon down
  // with SIGPIPE on the write: the write fails and the worker's exit says why.
  signal(SIGPIPE, SIG_IGN);
}

std::vector<std::string> ProcessBackend::WorkerArgs() const {
  return WorkerCommand(options_.worker, options_.allow_test_faults);
}

absl::StatusOr<std::shared_ptr<const ResidentModel>> ProcessBackend::LoadModel(
    const std::string& dir) {
  if (loader_ == nullptr) return JobBackend::LoadModel(dir);
  return loader_->LoadModel(dir);
}

absl::StatusOr<std::string> ProcessBackend::Run(const JobSpec& spec, const ProgressSink& progress,
                                                const CancelToken* cancel) {
  v1::WorkerJob job = ToWorkerJob(spec, spec.model_id.empty() ? "" : spec.model_dir);
  // The job's device slot: a cuda slot's GPU alone, seen as cuda:0; a cpu
  // slot with no GPU visible (server/device_slots.h).
  absl::StatusOr<WorkerPlacement> placed = PlaceWorker(spec.device, getenv("CUDA_VISIBLE_DEVICES"));
  if (!placed.ok()) return placed.status();
  job.set_device(placed->device);
  std::vector<std::string> env;
  if (placed->cuda_visible_devices) env.push_back("CUDA_VISIBLE_DEVICES=" + *placed->cuda_visible_devices);
  if (options_.allow_test_faults) {
    job.set_test_fault(static_cast<v1::WorkerTestFault>(spec.test_fault));
  }
  SandboxLimits limits;
  limits.max_memory_bytes = 0;  // no RLIMIT_AS: it would refuse CUDA's reservations
  limits.max_data_bytes = options_.max_memory_bytes;
  limits.cpu_seconds = 0;     // threads add up CPU seconds; the wall clock is the limit
  limits.max_file_bytes = -1;  // it writes the result, the report and models
  absl::StatusOr<StartedChild> started = StartSandboxed(WorkerArgs(), limits, true, env);
  if (!started.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start the worker: ", started.status().message()));
  }
  const int pid = started->pid;
  Fd in(started->in_fd), out(started->out_fd), err(started->err_fd);
  {
    std::string frame;
    AppendFrame(job, &frame);
    // A failed write means the worker is gone already; its exit says why.
    (void)WriteAll(in.get(), frame);
    in.Close();  // EOF: the whole job has arrived
  }

  const auto start = std::chrono::steady_clock::now();
  Kill why = Kill::kNone;
  std::string protocol_error;
  auto check_limits = [&] {
    if (why != Kill::kNone) return;
    if (cancel != nullptr && cancel->cancelled()) {
      why = Kill::kCancelled;
    } else if (options_.timeout_seconds > 0 &&
               std::chrono::steady_clock::now() - start >=
                   std::chrono::seconds(options_.timeout_seconds)) {
      why = Kill::kTimeout;
    } else {
      return;
    }
    KillProcessGroup(pid);
  };

  std::string err_tail;
  ReportStream reports(progress);
  bool out_open = true, err_open = true;
  char chunk[65536];
  while (out_open || err_open) {
    check_limits();
    pollfd fds[2] = {{out_open ? out.get() : -1, POLLIN, 0}, {err_open ? err.get() : -1, POLLIN, 0}};
    if (poll(fds, 2, options_.poll_milliseconds) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      if (i == 1) {
        // The worker's log lines go on to the daemon's stderr; a tail is kept
        // for the error message of a worker that dies.
        (void)WriteAll(2, std::string(chunk, static_cast<size_t>(n)));
        err_tail.append(chunk, static_cast<size_t>(n));
        if (err_tail.size() > 8192) err_tail.erase(0, err_tail.size() - 4096);
        continue;
      }
      if (why != Kill::kNone) continue;
      absl::Status took = reports.Append(absl::string_view(chunk, static_cast<size_t>(n)));
      if (!took.ok()) {
        protocol_error = std::string(took.message());
        why = Kill::kProtocol;
        KillProcessGroup(pid);
      }
    }
  }
  // Both pipes are closed: the worker is exiting (or closed them and lingers,
  // which the limits above still catch).
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return absl::InternalError("worker: lost track of the process");
    check_limits();
    usleep(2000);
  }

  switch (why) {
    case Kill::kCancelled:
      return absl::CancelledError("cancelled (worker killed)");
    case Kill::kTimeout:
      return absl::DeadlineExceededError(absl::StrCat(
          "time limit exceeded: the worker ran past worker-timeout-seconds = ",
          options_.timeout_seconds, " and was killed"));
    case Kill::kProtocol:
      return absl::InternalError(absl::StrCat("worker: ", protocol_error, " (worker killed)"));
    case Kill::kNone:
      break;
  }
  const std::string last = LastLine(err_tail);
  const std::string stderr_note = last.empty() ? "" : absl::StrCat("; its last words: ", last);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string msg = absl::StrCat("worker killed by signal ", sig, " (", strsignal(sig), ")");
    // RLIMIT_DATA refuses allocations rather than killing; a SIGKILL nobody
    // here sent is most likely the kernel's OOM killer.
    if (sig == SIGKILL) absl::StrAppend(&msg, ": out of memory? (", MemoryLimit(options_.max_memory_bytes), ")");
    return absl::InternalError(absl::StrCat(msg, stderr_note));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == kWorkerOutOfMemoryExit && !reports.has_outcome()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory (", MemoryLimit(options_.max_memory_bytes), ")"));
  }
  if (reports.has_outcome() && code == 0) {
    absl::StatusOr<std::string> result =
        OutcomeResult(reports.outcome(), MemoryLimit(options_.max_memory_bytes));
    // The worker names the device it was told (cuda:0); say which slot that is.
    if (!result.ok() && placed->cuda_visible_devices &&
        absl::StartsWith(result.status().message(), "device")) {
      return absl::Status(result.status().code(),
                          absl::StrCat(result.status().message(), " (job on ", spec.device,
                                       ": the worker saw CUDA_VISIBLE_DEVICES='",
                                       *placed->cuda_visible_devices, "')"));
    }
    return result;
  }
  return absl::InternalError(
      absl::StrCat("worker exited with code ", code, " without a result", stderr_note));
}

}  // namespace candies::server
