#include "server/slurm_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/log.h"
#include "server/run_command.h"
#include "server/slurm_time.h"
#include "server/worker_protocol.h"

namespace candies::server {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The files of one job in its folder (shared with the node that runs it).
constexpr char kJobFile[] = "job.pb";          // the framed WorkerJob
constexpr char kScriptFile[] = "job.sh";       // the batch script
constexpr char kReportsFile[] = "reports";     // the worker's report stream
constexpr char kLogFile[] = "worker.log";      // the worker's stderr and Slurm's notes
constexpr char kSlurmIdFile[] = "slurm-job-id";  // the submission in flight

std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

// The last non-empty line of the worker's log, for error messages ("" = none).
std::string LastLogLine(const std::string& path) {
  std::string tail = ReadSmallFile(path);
  if (tail.size() > 8192) tail.erase(0, tail.size() - 8192);
  absl::string_view t = absl::StripTrailingAsciiWhitespace(tail);
  const size_t nl = t.rfind('\n');
  if (nl != absl::string_view::npos) t.remove_prefix(nl + 1);
  if (t.size() > 300) t = t.substr(t.size() - 300);
  return std::string(t);
}

std::string WithLog(const std::string& message, const std::string& job_dir) {
  const std::string last = LastLogLine(job_dir + "/" + kLogFile);
  return last.empty() ? message : absl::StrCat(message, "; the worker log ends: ", last);
}

void Sleep(int milliseconds) { std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds)); }

}  // namespace

// Reads what the worker appended to its report file since the last call.
// Opened afresh each time: on a network file system a new open sees the
// writes another node has closed.
class SlurmBackend::ReportTail {
 public:
  ReportTail(std::string path, ProgressSink progress)
      : path_(std::move(path)), stream_(std::move(progress)) {}
  absl::Status Poll() {
    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::OkStatus();  // the job has not started yet
    absl::Status status;
    char chunk[65536];
    if (lseek(fd, offset_, SEEK_SET) == offset_) {
      while (status.ok()) {
        const ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        offset_ += n;
        status = stream_.Append(absl::string_view(chunk, static_cast<size_t>(n)));
      }
    }
    close(fd);
    return status;
  }
  const ReportStream& stream() const { return stream_; }

 private:
  const std::string path_;
  ReportStream stream_;
  off_t offset_ = 0;
};

SlurmBackend::SlurmBackend(SlurmBackendOptions options, JobBackend* loader)
    : options_(std::move(options)), loader_(loader) {}

absl::StatusOr<std::shared_ptr<const ResidentModel>> SlurmBackend::LoadModel(const std::string& dir) {
  if (loader_ == nullptr) return JobBackend::LoadModel(dir);
  return loader_->LoadModel(dir);
}

std::vector<std::string> SlurmBackend::SbatchArgs(const JobSpec& spec,
                                                  const std::string& job_dir) const {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  std::vector<std::string> a = {options_.sbatch, "--parsable", "--no-requeue",
                                absl::StrCat("--job-name=candies-", spec.id),
                                absl::StrCat("--output=", job_dir, "/", kLogFile),
                                absl::StrCat("--cpus-per-task=", options_.cpus_per_task)};
  // Relative paths in the job (a relative data-dir) resolve as they do here.
  if (!ec) a.push_back(absl::StrCat("--chdir=", cwd.string()));
  if (!options_.partition.empty()) a.push_back("--partition=" + options_.partition);
  if (!options_.account.empty()) a.push_back("--account=" + options_.account);
  // The configured limit, or less when the job's deadline comes first.
  const double remaining = spec.deadline == absl::InfiniteFuture()
                               ? -1
                               : std::max(0.0, absl::ToDoubleSeconds(spec.deadline - absl::Now()));
  const std::string time = SlurmTimeForJob(options_.time_limit, remaining);
  if (!time.empty()) a.push_back("--time=" + time);
  if (!options_.memory.empty()) a.push_back("--mem=" + options_.memory);
  if (!options_.gres.empty() && spec.device != "cpu") a.push_back("--gres=" + options_.gres);
  a.push_back(absl::StrCat(job_dir, "/", kScriptFile));
  return a;
}

absl::StatusOr<SlurmJob> SlurmBackend::Query(const std::string& slurm_id) const {
  absl::StatusOr<CommandOutput> out =
      RunCommand({options_.scontrol, "show", "job", "-o", slurm_id}, options_.command_timeout_seconds);
  if (!out.ok()) return out.status();
  if (out->exit_code != 0) {
    if (IsUnknownJobError(out->err)) {
      return absl::NotFoundError(absl::StrCat("Slurm no longer knows job ", slurm_id));
    }
    return absl::UnavailableError(absl::StrCat(
        "scontrol show job ", slurm_id, " failed (exit ", out->exit_code, ", signal ", out->signal,
        "): ", absl::StripAsciiWhitespace(out->err.substr(0, 300))));
  }
  return ParseScontrolJob(out->out, slurm_id);
}

void SlurmBackend::Cancel(const std::string& slurm_id) const {
  absl::StatusOr<CommandOutput> out =
      RunCommand({options_.scancel, slurm_id}, options_.command_timeout_seconds);
  if (!out.ok() || out->exit_code != 0) {
    LogLine("warn", "scancel failed",
            {{"slurm_job", slurm_id},
             {"error", std::string(out.ok() ? absl::StripAsciiWhitespace(out->err)
                                           : out.status().message())}});
  }
}

absl::Status SlurmBackend::WriteJobFiles(const JobSpec& spec, const std::string& job_dir) const {
  v1::WorkerJob job = ToWorkerJob(spec, spec.model_id.empty() ? "" : spec.model_dir);
  // The node's GPU is the one Slurm allocated (CUDA_VISIBLE_DEVICES): cuda:N
  // of this server means nothing there.
  if (absl::StartsWith(spec.device, "cuda")) job.set_device("cuda");
  if (job.threads() <= 0) job.set_threads(options_.cpus_per_task);
  if (options_.allow_test_faults) job.set_test_fault(static_cast<v1::WorkerTestFault>(spec.test_fault));
  std::string frame;
  AppendFrame(job, &frame);
  std::string script = absl::StrCat(
      "#!/bin/sh\n# candiesd job ", spec.id,
      " (server/slurm_backend.h): the worker reads its job from ", kJobFile,
      " and writes its reports to ", kReportsFile, ".\n");
  for (const std::string& arg : WorkerCommand(options_.worker, options_.allow_test_faults)) {
    absl::StrAppend(&script, ShellQuote(arg), " ");
  }
  absl::StrAppend(&script, "<", ShellQuote(job_dir + "/" + kJobFile), " >",
                  ShellQuote(job_dir + "/" + kReportsFile), "\n");
  if (absl::Status s = WriteFile(job_dir + "/" + kJobFile, frame); !s.ok()) return s;
  return WriteFile(job_dir + "/" + kScriptFile, script);
}

absl::StatusOr<std::string> SlurmBackend::Run(const JobSpec& spec, const ProgressSink& progress,
                                              const CancelToken* cancel) {
  const std::string job_dir = (fs::absolute(options_.work_dir) / spec.id).string();
  std::error_code ec;
  fs::create_directories(job_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("slurm: cannot create ", job_dir, ": ", ec.message()));
  }
  // A submission an earlier daemon left running: follow it rather than run the job twice.
  std::string adopt = Adoptable(job_dir);
  if (adopt.empty()) {
    if (absl::Status s = WriteJobFiles(spec, job_dir); !s.ok()) return s;
  } else {
    LogLine("info", "following the Slurm job of an earlier daemon", {{"job", spec.id}, {"slurm_job", adopt}});
  }

  absl::StatusOr<std::string> result;
  bool detached = false;
  for (int attempt = 1;; ++attempt) {
    bool retry = false;
    result = RunOnce(spec, job_dir, attempt, adopt, progress, cancel, &retry, &detached);
    adopt.clear();
    if (!retry) break;
    if (attempt >= options_.max_attempts) {
      result = absl::UnavailableError(absl::StrCat(result.status().message(), " (attempt ", attempt,
                                                   " of max-attempts ", options_.max_attempts, ")"));
      break;
    }
    LogLine("warn", "resubmitting a job Slurm could not finish",
            {{"job", spec.id}, {"attempt", absl::StrCat(attempt)}, {"why", std::string(result.status().message())}});
  }
  if (!detached) fs::remove_all(job_dir, ec);  // kept for the next daemon otherwise
  return result;
}

std::string SlurmBackend::Adoptable(const std::string& job_dir) const {
  const std::string id(absl::StripAsciiWhitespace(ReadSmallFile(job_dir + "/" + kSlurmIdFile)));
  if (id.empty()) return "";
  absl::StatusOr<SlurmJob> q = Query(id);
  if (q.ok() || !absl::IsNotFound(q.status())) return id;  // known, or scontrol not answering yet
  ReportTail reports(job_dir + "/" + kReportsFile, nullptr);
  if (reports.Poll().ok() && reports.stream().has_outcome()) return id;
  return "";  // gone without a result: submit again
}

absl::StatusOr<std::string> SlurmBackend::Submit(const JobSpec& spec, const std::string& job_dir,
                                                 int attempt, const ProgressSink& progress) const {
  std::error_code ec;
  fs::remove(job_dir + "/" + kReportsFile, ec);
  fs::remove(job_dir + "/" + kLogFile, ec);
  absl::StatusOr<CommandOutput> submitted =
      RunCommand(SbatchArgs(spec, job_dir), options_.command_timeout_seconds);
  if (!submitted.ok()) {
    return absl::UnavailableError(absl::StrCat("sbatch: ", submitted.status().message()));
  }
  if (submitted->exit_code != 0) {
    return absl::UnavailableError(
        absl::StrCat("sbatch refused the job (exit ", submitted->exit_code, "): ",
                     absl::StripAsciiWhitespace(submitted->err.substr(0, 500))));
  }
  absl::StatusOr<std::string> slurm_id = ParseSbatchJobId(submitted->out);
  if (!slurm_id.ok()) return slurm_id.status();
  (void)WriteFile(job_dir + "/" + kSlurmIdFile, *slurm_id + "\n");
  LogLine("info", "submitted to Slurm",
          {{"job", spec.id}, {"slurm_job", *slurm_id}, {"attempt", absl::StrCat(attempt)}});
  if (progress) {
    ProgressEvent e;
    e.stage = "slurm_pending";
    e.message = absl::StrCat("Slurm job ", *slurm_id, " (attempt ", attempt, ")");
    progress(e);
  }
  return slurm_id;
}

absl::Status SlurmBackend::Stop(const std::string& slurm_id, bool timed_out) const {
  Cancel(slurm_id);
  // Wait (bounded) for the job to end, so that its folder is no longer in use.
  const auto until = Clock::now() + std::chrono::duration<double>(options_.command_timeout_seconds);
  while (Clock::now() < until) {
    absl::StatusOr<SlurmJob> q = Query(slurm_id);
    if (!q.ok() || ClassifySlurmState(q->state).value_or(SlurmOutcome::kFailed) != SlurmOutcome::kActive) {
      break;
    }
    Sleep(options_.poll_milliseconds);
  }
  if (!timed_out) return absl::CancelledError(absl::StrCat("cancelled (Slurm job ", slurm_id, " cancelled)"));
  return absl::DeadlineExceededError(absl::StrCat(
      "time limit exceeded: Slurm job ", slurm_id, " ran past worker-timeout-seconds = ",
      options_.timeout_seconds, " and was cancelled"));
}

absl::StatusOr<SlurmJob> SlurmBackend::Follow(const std::string& slurm_id, ReportTail& reports,
                                              const CancelToken* cancel, bool* forgotten,
                                              bool* detached) const {
  const auto start = Clock::now();
  auto last_answer = start;
  while (true) {
    if (absl::Status s = reports.Poll(); !s.ok()) {
      Cancel(slurm_id);
      return absl::InternalError(absl::StrCat("worker: ", s.message(), " (Slurm job ", slurm_id,
                                              " cancelled)"));
    }
    const bool timed_out = options_.timeout_seconds > 0 &&
                           Clock::now() - start >= std::chrono::seconds(options_.timeout_seconds);
    if (cancel != nullptr && cancel->cancelled() && detaching_) {
      *detached = true;  // the daemon stops; the next start follows this job
      return absl::UnavailableError(
          absl::StrCat("candiesd stopped; Slurm job ", slurm_id, " left running for the next start"));
    }
    if ((cancel != nullptr && cancel->cancelled()) || timed_out) return Stop(slurm_id, timed_out);
    absl::StatusOr<SlurmJob> q = Query(slurm_id);
    if (q.ok()) {
      last_answer = Clock::now();
      absl::StatusOr<SlurmOutcome> what = ClassifySlurmState(q->state);
      if (!what.ok()) {
        Cancel(slurm_id);
        return absl::InternalError(absl::StrCat("Slurm job ", slurm_id, ": ", what.status().message(),
                                                " (cancelled)"));
      }
      if (*what != SlurmOutcome::kActive) return q;
    } else if (absl::IsNotFound(q.status())) {
      *forgotten = true;  // ended and aged out (MinJobAge) between two polls
      return q;
    } else if (!absl::IsUnavailable(q.status()) && !absl::IsDeadlineExceeded(q.status())) {
      Cancel(slurm_id);  // scontrol answered something this code cannot read
      return absl::InternalError(absl::StrCat(q.status().message(), " (Slurm job cancelled)"));
    } else if (Clock::now() - last_answer >= std::chrono::seconds(options_.unreachable_seconds)) {
      Cancel(slurm_id);  // best effort: the controller may be the one not answering
      return absl::UnavailableError(absl::StrCat(
          "lost Slurm job ", slurm_id, ": no answer for slurm-unreachable-seconds = ",
          options_.unreachable_seconds, ": ", q.status().message()));
    }
    Sleep(options_.poll_milliseconds);
  }
}

absl::StatusOr<std::string> SlurmBackend::RunOnce(const JobSpec& spec, const std::string& job_dir,
                                                  int attempt, const std::string& adopt,
                                                  const ProgressSink& progress,
                                                  const CancelToken* cancel, bool* retry,
                                                  bool* detached) {
  absl::StatusOr<std::string> slurm_id =
      adopt.empty() ? Submit(spec, job_dir, attempt, progress) : adopt;
  if (!slurm_id.ok()) return slurm_id.status();
  ReportTail reports(job_dir + "/" + kReportsFile, progress);
  bool forgotten = false;
  absl::StatusOr<SlurmJob> ended = Follow(*slurm_id, reports, cancel, &forgotten, detached);
  if (*detached) return ended.status();
  (void)WriteFile(job_dir + "/" + kSlurmIdFile, "");  // nothing of ours runs in Slurm now
  if (!ended.ok() && !forgotten) return ended.status();

  const SlurmOutcome outcome = forgotten ? SlurmOutcome::kCompleted : *ClassifySlurmState(ended->state);
  if (outcome == SlurmOutcome::kRetry) {
    *retry = true;
    return absl::UnavailableError(DescribeSlurmEnd(*ended));
  }
  // The outcome may reach a network file system after Slurm has seen the end.
  const auto until = Clock::now() + std::chrono::seconds(options_.result_wait_seconds);
  while (true) {
    if (absl::Status s = reports.Poll(); !s.ok()) {
      return absl::InternalError(absl::StrCat("worker: ", s.message()));
    }
    if (reports.stream().has_outcome() || outcome != SlurmOutcome::kCompleted || Clock::now() >= until) {
      break;
    }
    Sleep(options_.poll_milliseconds);
  }
  const std::string memory_limit =
      options_.memory.empty() ? "the cluster's default memory" : absl::StrCat("slurm-memory = ", options_.memory);
  if (reports.stream().has_outcome()) return OutcomeResult(reports.stream().outcome(), memory_limit);
  if (outcome == SlurmOutcome::kFailed) {
    if (ended->exit_code == kWorkerOutOfMemoryExit) {
      return absl::ResourceExhaustedError(absl::StrCat("out of memory (", memory_limit, ")"));
    }
    return absl::InternalError(WithLog(DescribeSlurmEnd(*ended), job_dir));
  }
  return absl::InternalError(WithLog(
      absl::StrCat("Slurm job ", *slurm_id, forgotten ? " ended" : " COMPLETED",
                   " but the worker reported no outcome in ", job_dir, "/", kReportsFile,
                   " within slurm-result-wait-seconds = ", options_.result_wait_seconds),
      job_dir));
}

}  // namespace candies::server
