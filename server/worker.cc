#include "server/worker.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/log.h"
#include "server/worker_protocol.h"

namespace candies::server {
namespace {

// operator new found no memory: no reporting is safe now (reporting
// allocates); the exit code tells the daemon.
void OutOfMemory() { _exit(kWorkerOutOfMemoryExit); }

absl::StatusOr<v1::WorkerJob> ReadJob(int fd) {
  std::string bytes;
  char chunk[65536];
  while (true) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("stdin: ", std::strerror(errno)));
    if (n == 0) break;
    bytes.append(chunk, static_cast<size_t>(n));
    if (static_cast<int64_t>(bytes.size()) > kMaxWorkerFrameBytes + 16) {
      return absl::InvalidArgumentError("stdin: job message too long");
    }
  }
  v1::WorkerJob job;
  absl::StatusOr<bool> took = TakeFrame(&bytes, &job);
  if (!took.ok()) return took.status();
  if (!*took || !bytes.empty()) return absl::InvalidArgumentError("stdin: expected one job message");
  return job;
}

// Test faults (--allow-test-faults only). Each ends the process or never returns.
void CommitFault(v1::WorkerTestFault fault) {
  switch (fault) {
    case v1::WORKER_TEST_FAULT_SEGFAULT:
      raise(SIGSEGV);
      break;
    case v1::WORKER_TEST_FAULT_ALLOCATE: {
      // Memory until refused (RLIMIT_DATA counts it untouched); one byte
      // of each block is written so the allocations cannot be elided.
      std::vector<std::unique_ptr<char[]>> hog;
      while (true) {
        hog.emplace_back(new char[64 << 20]);
        static_cast<volatile char*>(hog.back().get())[0] = 1;
      }
    }
    case v1::WORKER_TEST_FAULT_HANG:
      while (true) std::this_thread::sleep_for(std::chrono::seconds(60));
    case v1::WORKER_TEST_FAULT_EXIT:
      _exit(7);
    default:
      break;
  }
}

// Heuristic for allocators that report instead of throwing std::bad_alloc
// (LibTorch's CPU allocator: "DefaultCPUAllocator: can't allocate memory").
bool LooksOutOfMemory(absl::string_view message) {
  return absl::StrContains(message, "can't allocate memory") ||
         absl::StrContains(message, "std::bad_alloc");
}

}  // namespace

int RunWorker(const std::vector<std::string>& args, const BackendFactory& make_backend) {
  bool allow_faults = false;
  for (const std::string& a : args) {
    if (a == "--allow-test-faults") {
      allow_faults = true;
    } else {
      std::fprintf(stderr, "candies-worker: unknown argument '%s' (started by candiesd only)\n",
                   a.c_str());
      return 2;
    }
  }
  // Reports go to the original stdout; everything else printed goes to stderr.
  const int report_fd = dup(1);
  if (report_fd < 0 || dup2(2, 1) < 0) {
    std::perror("candies-worker: dup");
    return 2;
  }
  std::set_new_handler(OutOfMemory);
  absl::StatusOr<v1::WorkerJob> job = ReadJob(0);
  if (!job.ok()) {
    std::fprintf(stderr, "candies-worker: %s\n", std::string(job.status().message()).c_str());
    return 2;
  }
  if (allow_faults) CommitFault(job->test_fault());

  absl::Mutex write_mu;
  auto report = [&](const v1::WorkerReport& r) {
    std::string frame;
    AppendFrame(r, &frame);
    absl::MutexLock lock(&write_mu);
    // The daemon gone means this process is about to die too (PDEATHSIG).
    (void)WriteAll(report_fd, frame);
  };
  ProgressSink sink = [&](const ProgressEvent& e) {
    v1::WorkerReport r;
    *r.mutable_progress() = ToWorkerProgress(e);
    report(r);
  };

  absl::StatusOr<JobSpec> parsed = FromWorkerJob(*job);
  if (!parsed.ok()) {
    std::fprintf(stderr, "candies-worker: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  JobSpec spec = *std::move(parsed);
  std::unique_ptr<JobBackend> backend = make_backend(spec.device);
  absl::StatusOr<std::string> result;
  if (!job->model_dir().empty()) {
    // Loaded per job from the registry's folder (docs/ARCHITECTURE.md, "Workers").
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<std::shared_ptr<const ResidentModel>> model = backend->LoadModel(job->model_dir());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (model.ok()) {
      spec.model = *model;
      ProgressEvent e;
      e.stage = "load_model";
      e.step = e.total_steps = 1;
      e.message = absl::StrCat("model loaded in ", seconds, " s");
      sink(e);
      LogLine("info", "worker loaded model",
              {{"job", spec.id}, {"dir", job->model_dir()}, {"seconds", absl::StrCat(seconds)}});
    } else {
      result = model.status();
    }
  }
  if (job->model_dir().empty() || spec.model != nullptr) {
    result = backend->Run(spec, sink, /*cancel=*/nullptr);  // cancel = the daemon's SIGKILL
  }
  v1::WorkerReport r;
  v1::WorkerOutcome* o = r.mutable_outcome();
  if (result.ok()) {
    o->set_result_path(*result);
  } else {
    o->set_code(static_cast<int>(result.status().code()));
    o->set_message(std::string(result.status().message()));
    o->set_out_of_memory(LooksOutOfMemory(result.status().message()));
  }
  report(r);
  close(report_fd);
  return 0;
}

}  // namespace candies::server
