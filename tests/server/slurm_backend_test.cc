// SlurmBackend's following logic against stand-in sbatch/scontrol/scancel
// scripts (the real cluster is tests/server/slurm_e2e_test.sh): each
// scenario scripts the states Slurm reports, and the worker's report file is
// written as a node would write it. Retries on NODE_FAIL/PREEMPTED up to
// max-attempts, failed states with their reason, cancel through scancel, odd
// scontrol output as a clear error, and a Slurm job that outlives the daemon.
#include "server/slurm_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/worker_protocol.h"

namespace candies::server {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const std::string& path, const std::string& text, bool executable = false) {
  std::ofstream(path, std::ios::binary) << text;
  if (executable) chmod(path.c_str(), 0755);
}

class SlurmBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/candies_slurm_backend_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // sbatch: counts submissions, prints the next id from ids (one per line),
    // and copies the scripted report file for that id into the job's folder
    // (the last argument is <job dir>/job.sh), as the worker on a node would.
    Write(dir_ + "/sbatch", absl::StrCat(R"(#!/bin/sh
d=)", dir_, R"(
echo "$@" >> "$d/sbatch.args"
n=$(( $(cat "$d/submissions" 2>/dev/null || echo 0) + 1 ))
echo $n > "$d/submissions"
if [ -f "$d/sbatch.fail" ]; then cat "$d/sbatch.fail" >&2; exit 1; fi
id=$(sed -n "${n}p" "$d/ids")
for last; do :; done
if [ -f "$d/reports.$id" ]; then cp "$d/reports.$id" "$(dirname "$last")/reports"; fi
echo "$id"
)"), true);
    // scontrol show job -o ID: prints state.ID (the scenario's text) as is.
    Write(dir_ + "/scontrol", absl::StrCat(R"(#!/bin/sh
d=)", dir_, R"(
for id; do :; done
if [ -f "$d/state.$id" ]; then cat "$d/state.$id"; exit 0; fi
echo "slurm_load_jobs error: Invalid job id specified" >&2
exit 1
)"), true);
    Write(dir_ + "/scancel", absl::StrCat("#!/bin/sh\necho \"$1\" >> '", dir_, "/scancelled'\n",
                                          "printf 'JobId=%s JobState=CANCELLED ExitCode=0:15\\n' \"$1\" > '",
                                          dir_, "/state.'\"$1\"\n"),
          true);
    options_.work_dir = dir_ + "/work";
    options_.worker = "/nonexistent/candies-worker";  // never run: sbatch is a stand-in
    options_.sbatch = dir_ + "/sbatch";
    options_.scontrol = dir_ + "/scontrol";
    options_.scancel = dir_ + "/scancel";
    options_.poll_milliseconds = 10;
    options_.command_timeout_seconds = 10;
    options_.result_wait_seconds = 0;
    options_.max_attempts = 2;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  JobSpec Spec() const {
    JobSpec s;
    s.id = "job-1";
    s.result_path = dir_ + "/result.h5ad";
    s.device = "cpu";
    return s;
  }
  // Scripts Slurm: submission n gets id ids[n-1]; job `id` reports `state`.
  void Ids(const std::string& ids) { Write(dir_ + "/ids", ids); }
  void State(const std::string& id, const std::string& state, const std::string& exit = "0:0") {
    Write(dir_ + "/state." + id,
          absl::StrCat("JobId=", id, " JobName=candies-job-1 JobState=", state,
                       " Reason=None ExitCode=", exit, " NodeList=node1\n"));
  }
  // What the worker of Slurm job `id` reports: progress, then an outcome.
  void Reports(const std::string& id, const v1::WorkerOutcome& outcome) {
    std::string bytes;
    v1::WorkerReport progress;
    progress.mutable_progress()->set_stage("integrate");
    progress.mutable_progress()->set_step(1);
    AppendFrame(progress, &bytes);
    v1::WorkerReport r;
    *r.mutable_outcome() = outcome;
    AppendFrame(r, &bytes);
    Write(dir_ + "/reports." + id, bytes);
  }
  v1::WorkerOutcome Success() const {
    v1::WorkerOutcome o;
    o.set_result_path(dir_ + "/result.h5ad");
    return o;
  }
  int Submissions() { return std::atoi(Read(dir_ + "/submissions").c_str()); }
  absl::StatusOr<std::string> Run(const CancelToken* cancel = nullptr) {
    SlurmBackend backend(options_, nullptr);
    stages_.clear();
    return backend.Run(Spec(), [this](const ProgressEvent& e) { stages_.push_back(e.stage); }, cancel);
  }

  std::string dir_;
  SlurmBackendOptions options_;
  std::vector<std::string> stages_;
};

TEST_F(SlurmBackendTest, CompletedJobGivesTheWorkersResult) {
  Ids("101\n");
  State("101", "COMPLETED");
  Reports("101", Success());
  absl::StatusOr<std::string> r = Run();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, dir_ + "/result.h5ad");
  EXPECT_EQ(Submissions(), 1);
  // The submission, then the worker's own progress through the report file.
  ASSERT_EQ(stages_.size(), 2u);
  EXPECT_EQ(stages_[0], "slurm_pending");
  EXPECT_EQ(stages_[1], "integrate");
  // The job's folder is gone once it ended.
  EXPECT_FALSE(std::filesystem::exists(options_.work_dir + "/job-1"));
}

TEST_F(SlurmBackendTest, WorkersErrorIsTheJobsError) {
  Ids("101\n");
  State("101", "COMPLETED");
  v1::WorkerOutcome o;
  o.set_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
  o.set_message("mod1: 3 spots, mod2: 4 spots");
  Reports("101", o);
  absl::StatusOr<std::string> r = Run();
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "mod1: 3 spots, mod2: 4 spots");
}

TEST_F(SlurmBackendTest, NodeFailureIsRetried) {
  Ids("101\n102\n");
  State("101", "NODE_FAIL");
  State("102", "COMPLETED");
  Reports("102", Success());
  absl::StatusOr<std::string> r = Run();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Submissions(), 2);
}

TEST_F(SlurmBackendTest, PreemptedUpToMaxAttemptsThenFailed) {
  Ids("101\n102\n103\n");
  State("101", "PREEMPTED");
  State("102", "PREEMPTED");
  State("103", "COMPLETED");
  Reports("103", Success());
  absl::StatusOr<std::string> r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Submissions(), 2);  // max_attempts
  EXPECT_NE(r.status().message().find("Slurm job 102 PREEMPTED"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("max-attempts 2"), std::string::npos) << r.status();
}

TEST_F(SlurmBackendTest, FailedStatesGiveTheReason) {
  struct Case {
    const char* state;
    const char* exit;
    const char* says;
  };
  const Case cases[] = {
      {"FAILED", "137:0", "killed by signal 9"},
      {"FAILED", "0:9", "killed by signal 9"},
      {"FAILED", "2:0", "exited with code 2"},
      {"TIMEOUT", "0:15", "time limit"},
      {"OUT_OF_MEMORY", "0:125", "out of memory"},
      {"CANCELLED", "0:15", "cancelled on the cluster"},
  };
  for (const Case& c : cases) {
    std::filesystem::remove(dir_ + "/submissions");
    Ids("101\n");
    State("101", c.state, c.exit);
    absl::StatusOr<std::string> r = Run();
    ASSERT_FALSE(r.ok()) << c.state;
    // Not CANCELLED/DEADLINE codes: the scheduler must call these FAILED.
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status();
    EXPECT_EQ(Submissions(), 1) << c.state;
  }
  // The worker's own out-of-memory exit (code 3, no outcome).
  std::filesystem::remove(dir_ + "/submissions");
  State("101", "FAILED", "3:0");
  absl::StatusOr<std::string> oom = Run();
  EXPECT_TRUE(absl::IsResourceExhausted(oom.status())) << oom.status();
}

TEST_F(SlurmBackendTest, CancelRunsScancel) {
  Ids("101\n");
  State("101", "RUNNING");
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel.Cancel();
  });
  absl::StatusOr<std::string> r = Run(&cancel);
  canceller.join();
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_EQ(Read(dir_ + "/scancelled"), "101\n");
}

TEST_F(SlurmBackendTest, WorkerTimeoutCancelsTheSlurmJob) {
  options_.timeout_seconds = 1;
  Ids("101\n");
  State("101", "PENDING");
  absl::StatusOr<std::string> r = Run();
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("worker-timeout-seconds = 1"), std::string::npos) << r.status();
  EXPECT_EQ(Read(dir_ + "/scancelled"), "101\n");
}

TEST_F(SlurmBackendTest, OddScontrolOutputIsAClearErrorAndCancels) {
  Ids("101\n");
  Write(dir_ + "/state.101", "JobId=101 JobState=EXPLODED ExitCode=0:0\n");
  absl::StatusOr<std::string> r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown Slurm job state 'EXPLODED'"), std::string::npos)
      << r.status();
  EXPECT_EQ(Read(dir_ + "/scancelled"), "101\n");

  std::filesystem::remove(dir_ + "/scancelled");
  std::filesystem::remove(dir_ + "/submissions");
  Write(dir_ + "/state.101", "JobId=101 JobState=RUNNING ExitCode=garbage\n");
  r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is not CODE:SIGNAL"), std::string::npos) << r.status();
  EXPECT_EQ(Read(dir_ + "/scancelled"), "101\n");
}

TEST_F(SlurmBackendTest, SbatchErrorsAreTheJobsError) {
  Ids("101\n");
  Write(dir_ + "/sbatch.fail", "sbatch: error: invalid partition specified: nope\n");
  absl::StatusOr<std::string> r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("invalid partition specified: nope"), std::string::npos)
      << r.status();

  std::filesystem::remove(dir_ + "/sbatch.fail");
  Ids("Submitted batch job 5\n");  // not --parsable output
  r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("printed no job id"), std::string::npos) << r.status();

  options_.sbatch = dir_ + "/no-such-sbatch";
  r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no-such-sbatch"), std::string::npos) << r.status();
}

TEST_F(SlurmBackendTest, CompletedWithoutOutcomeIsAnError) {
  Ids("101\n");
  State("101", "COMPLETED");
  absl::StatusOr<std::string> r = Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("reported no outcome"), std::string::npos) << r.status();
}

TEST_F(SlurmBackendTest, JobForgottenBySlurmUsesTheReportFile) {
  Ids("101\n");  // no state.101: scontrol says "Invalid job id"
  Reports("101", Success());
  absl::StatusOr<std::string> r = Run();
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(SlurmBackendTest, SubmissionOfAnEarlierDaemonIsFollowedNotRepeated) {
  // The daemon stopped while Slurm job 77 ran; the job was requeued.
  const std::string job_dir = options_.work_dir + "/job-1";
  std::filesystem::create_directories(job_dir);
  Write(job_dir + "/slurm-job-id", "77\n");
  State("77", "COMPLETED");
  Reports("77", Success());
  std::filesystem::copy_file(dir_ + "/reports.77", job_dir + "/reports");
  absl::StatusOr<std::string> r = Run();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Submissions(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/scancelled"));
  EXPECT_FALSE(std::filesystem::exists(job_dir));
}

TEST_F(SlurmBackendTest, SubmissionGoneWithoutResultIsSubmittedAgain) {
  const std::string job_dir = options_.work_dir + "/job-1";
  std::filesystem::create_directories(job_dir);
  Write(job_dir + "/slurm-job-id", "77\n");  // Slurm no longer knows 77; no report
  Ids("101\n");
  State("101", "COMPLETED");
  Reports("101", Success());
  ASSERT_TRUE(Run().ok());
  EXPECT_EQ(Submissions(), 1);
}

TEST_F(SlurmBackendTest, DaemonStopLeavesTheSlurmJobRunning) {
  Ids("101\n");
  State("101", "RUNNING");
  SlurmBackend backend(options_, nullptr);
  CancelToken cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    backend.PrepareShutdown();  // as RunDaemon does before the scheduler's Shutdown
    cancel.Cancel();
  });
  absl::StatusOr<std::string> r = backend.Run(Spec(), nullptr, &cancel);
  stopper.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("left running"), std::string::npos) << r.status();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/scancelled"));
  // What the next start needs to follow it.
  EXPECT_EQ(Read(options_.work_dir + "/job-1/slurm-job-id"), "101\n");
  EXPECT_TRUE(std::filesystem::exists(options_.work_dir + "/job-1/job.pb"));

  // The next daemon follows job 101 to its end instead of submitting again.
  State("101", "COMPLETED");
  Reports("101", Success());
  std::filesystem::copy_file(dir_ + "/reports.101", options_.work_dir + "/job-1/reports");
  ASSERT_TRUE(Run().ok());
  EXPECT_EQ(Submissions(), 1);
}

TEST_F(SlurmBackendTest, SbatchRequestsFromTheOptions) {
  options_.partition = "gpu";
  options_.account = "lab";
  options_.time_limit = "1-00:00:00";
  options_.memory = "16G";
  options_.gres = "gpu:1";
  options_.cpus_per_task = 8;
  SlurmBackend backend(options_, nullptr);
  JobSpec spec = Spec();
  spec.device = "cuda:1";
  std::vector<std::string> a = backend.SbatchArgs(spec, "/d/job-1");
  auto has = [&](const std::string& arg) { return std::find(a.begin(), a.end(), arg) != a.end(); };
  EXPECT_EQ(a.front(), options_.sbatch);
  EXPECT_EQ(a.back(), "/d/job-1/job.sh");
  for (const char* arg : {"--parsable", "--no-requeue", "--partition=gpu", "--account=lab",
                          "--time=1-00:00:00", "--mem=16G", "--gres=gpu:1", "--cpus-per-task=8",
                          "--output=/d/job-1/worker.log", "--job-name=candies-job-1"}) {
    EXPECT_TRUE(has(arg)) << arg;
  }
  // A CPU job asks for no GPU.
  spec.device = "cpu";
  a = backend.SbatchArgs(spec, "/d/job-1");
  EXPECT_FALSE(has("--gres=gpu:1"));
}

// sbatch's --time: the configured limit, or the time to the job's deadline
// (rounded up to minutes) when that comes first; each submission as sbatch got it.
TEST_F(SlurmBackendTest, TimeLimitFromTheJobsDeadline) {
  options_.time_limit = "1-00:00:00";
  Ids("101\n102\n103\n104\n");
  for (const char* id : {"101", "102", "103", "104"}) {
    State(id, "COMPLETED");
    Reports(id, Success());
  }
  auto run = [&](absl::Duration left) {
    JobSpec spec = Spec();
    spec.deadline = left == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + left;
    SlurmBackend backend(options_, nullptr);
    absl::StatusOr<std::string> r = backend.Run(spec, nullptr, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    std::filesystem::remove_all(options_.work_dir);  // the next run submits anew
  };
  run(absl::Seconds(150));          // 2.5 minutes left -> 3
  run(absl::InfiniteDuration());    // no deadline -> the configured day
  options_.time_limit = "120";
  run(absl::Hours(3));              // the 120 minutes come first
  options_.time_limit = "";
  run(absl::Seconds(30));           // no configured limit, 30 s left -> 1
  std::istringstream lines(Read(dir_ + "/sbatch.args"));
  std::vector<std::string> times;
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.find("--time=");
    times.push_back(at == std::string::npos ? "none" : line.substr(at, line.find(' ', at) - at));
  }
  const std::vector<std::string> want = {"--time=3", "--time=1-00:00:00", "--time=120", "--time=1"};
  EXPECT_EQ(times, want);
}

TEST_F(SlurmBackendTest, JobFileCarriesTheJobForTheNode) {
  options_.cpus_per_task = 3;
  Ids("101\n");
  State("101", "PENDING");
  CancelToken cancel;
  JobSpec spec = Spec();
  spec.device = "cuda:1";
  std::atomic<bool> seen{false};
  v1::WorkerJob job;
  std::string script;
  std::thread reader([&] {
    const std::string job_dir = options_.work_dir + "/job-1";
    for (int i = 0; i < 500 && !seen; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!std::filesystem::exists(job_dir + "/slurm-job-id")) continue;
      std::string bytes = Read(job_dir + "/job.pb");
      script = Read(job_dir + "/job.sh");
      seen = TakeFrame(&bytes, &job).value_or(false);
    }
    cancel.Cancel();
  });
  SlurmBackend backend(options_, nullptr);
  absl::StatusOr<std::string> r = backend.Run(spec, nullptr, &cancel);
  reader.join();
  ASSERT_TRUE(seen);
  EXPECT_EQ(job.id(), "job-1");
  EXPECT_EQ(job.device(), "cuda");  // the GPU Slurm allocated, whatever its index here
  EXPECT_EQ(job.threads(), 3);      // the CPUs asked for
  EXPECT_EQ(job.result_path(), dir_ + "/result.h5ad");
  EXPECT_NE(script.find("'/nonexistent/candies-worker' <"), std::string::npos) << script;
  EXPECT_NE(script.find("/job-1/reports'"), std::string::npos) << script;
}

}  // namespace
}  // namespace candies::server
