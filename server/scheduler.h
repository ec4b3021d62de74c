// Runs jobs from a bounded priority queue on device slots
// (server/device_slots.h): one worker thread per slot, and each job started
// takes a free slot and runs on its device until it ends, whichever way.
//
// Order: higher priority first; at equal priority, owners take turns
// (round-robin: the owner served longest ago goes first), and one owner's jobs
// run in submission order. A job past its deadline ends DEADLINE_EXCEEDED,
// whether still queued or running (its CancelToken fires).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/backend.h"
#include "server/device_slots.h"

namespace candies::server {

struct SchedulerOptions {
  // Jobs running at once per device (config device-slots), taken in this
  // order. Empty: `workers` slots that leave each job's own device as is.
  std::vector<DeviceSlotGroup> slots;
  int workers = 1;        // jobs running at once when `slots` is empty
  int max_queue = 1000;   // queued (not running) jobs; more is RESOURCE_EXHAUSTED
  // How often workers wake to expire queued jobs past their deadline.
  absl::Duration deadline_poll = absl::Milliseconds(50);
};

enum class FinalState { kSucceeded, kFailed, kCancelled, kDeadlineExceeded };
const char* FinalStateName(FinalState state);

// Callbacks, called from worker threads without the scheduler's lock held.
struct SchedulerListener {
  // `device`: the device of the slot the job took (JobSpec::device).
  std::function<void(const std::string& id, const std::string& device)> on_start;
  std::function<void(const std::string& id, const ProgressEvent& event)> on_progress;
  // `result` is the result path on success, the error message otherwise.
  std::function<void(const std::string& id, FinalState state, const std::string& result,
                     double seconds)>
      on_finish;
};

class Scheduler {
 public:
  Scheduler(SchedulerOptions options, JobBackend* backend, SchedulerListener listener);
  ~Scheduler();  // Shutdown()

  // Queues a job. `deadline` = absl::InfiniteFuture() for none.
  absl::Status Submit(JobSpec spec, int priority, absl::Time deadline);
  // Queued: removed, reported CANCELLED. Running: its token fires. NotFound when
  // the scheduler does not hold the job.
  absl::Status Cancel(const std::string& id);
  // 0-based position in run order among queued jobs; -1 when not queued.
  int QueuePosition(const std::string& id);
  // Every queued job's position (one O(n^2) replay instead of one per job).
  std::map<std::string, int> QueuePositions();
  int queued();
  int running();
  int slots();  // jobs that can run at once (all devices)
  // Stops taking jobs, cancels running ones and joins the workers. Queued jobs
  // are left unreported (the store keeps them QUEUED for the next start).
  void Shutdown();

 private:
  struct Entry {
    JobSpec spec;
    int priority = 0;
    absl::Time deadline;
    uint64_t seq = 0;
  };
  struct Running {
    std::shared_ptr<CancelToken> cancel;
    absl::Time deadline;
    bool deadline_hit = false;
  };

  void WorkerLoop();
  // Index into queue_ of the job to run next; queue_ must be non-empty.
  size_t PickLocked(const std::map<std::string, uint64_t>& last_served) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked(std::vector<std::string>* expired) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SchedulerOptions options_;
  JobBackend* const backend_;
  const SchedulerListener listener_;

  absl::Mutex mu_;
  std::vector<Entry> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);
  SlotPool pool_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> last_served_ ABSL_GUARDED_BY(mu_);  // owner -> turn
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t turn_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace candies::server
