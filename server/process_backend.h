// The JobBackend that runs every job in its own worker process
// (`candies-worker`, server/worker_main.cc): the daemon survives whatever the
// job does. The worker gets the job as a WorkerJob on its stdin and reports
// progress and its outcome on its stdout (server/worker_protocol.h); it runs
// under a memory limit (RLIMIT_DATA) in its own process group and dies with
// the daemon. Cancel, Shutdown and a deadline (the scheduler fires the CancelToken)
// and the wall-clock limit kill the process group. A worker that dies ends its
// job with the reason: "worker killed by signal 11 (Segmentation fault)",
// "out of memory (limit N bytes)", "time limit exceeded (...)".
#pragma once

#include <cstdint>
#include <string>

#include "server/backend.h"

namespace candies::server {

struct ProcessBackendOptions {
  std::string worker;  // the worker binary; "" = candies-worker beside this executable
  // RLIMIT_DATA of each worker (bytes: heap and other private writable
  // memory; not GPU memory); 0 = none. Config: worker-max-memory-bytes.
  int64_t max_memory_bytes = int64_t{32} << 30;
  // Wall-clock seconds one worker may run, then it is killed; 0 = none.
  // Config: worker-timeout-seconds. A job's own deadline_seconds applies too.
  int64_t timeout_seconds = int64_t{24} * 3600;
  // Passes JobSpec::test_fault on and starts workers with --allow-test-faults.
  // Tests only: no config key sets it.
  bool allow_test_faults = false;
  int poll_milliseconds = 50;  // how often a running job's cancel token is checked
};

class ProcessBackend : public JobBackend {
 public:
  // `loader` loads models for the daemon's registry (LoadModel); may be null
  // (then models cannot be made resident). Must outlive this backend.
  ProcessBackend(ProcessBackendOptions options, JobBackend* loader);
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override;
  bool uses_resident_models() const override { return false; }
  absl::StatusOr<std::shared_ptr<const ResidentModel>> LoadModel(const std::string& dir) override;

  // The worker command line (absolute binary path first).
  std::vector<std::string> WorkerArgs() const;

 private:
  const ProcessBackendOptions options_;
  JobBackend* const loader_;
};

}  // namespace candies::server
