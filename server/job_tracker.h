// Live state of queued and running jobs: the scheduler's callbacks update the
// store rows and the in-memory progress; GetJob/ListJobs decorate rows with it
// and WatchJob streams fan out from it. gRPC-free: streams are callbacks.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "candies/v1/candies.pb.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/scheduler.h"
#include "server/store.h"

namespace candies::server {

bool IsFinal(v1::JobState s);

class JobTracker {
 public:
  // All must outlive the tracker.
  JobTracker(Store* store, Metrics* metrics, ModelRegistry* models);

  // Callbacks for the Scheduler. The scheduler is made with them, so it is
  // handed over afterwards with Attach (before any job is submitted).
  SchedulerListener Listener();
  void Attach(Scheduler* scheduler) { scheduler_ = scheduler; }

  // Ends open Watch calls (UNAVAILABLE).
  void Shutdown();

  // Live stage and queue position (`positions`: from Scheduler::QueuePositions,
  // or null to ask the scheduler).
  void Decorate(v1::Job* job, const std::map<std::string, int>* positions = nullptr);
  void UpdateGauges();

  // Streams events of job `id` through `write` until the job ends (its final
  // event is written), `write` returns false or `cancelled()` turns true.
  // `cancelled` is polled at least every 500 ms.
  absl::Status Watch(const std::string& id, const std::function<bool(const v1::JobEvent&)>& write,
                     const std::function<bool()>& cancelled);

 private:
  struct Live {
    v1::JobEvent event;
    uint64_t version = 0;
    absl::Time stage_started;  // for the stage duration histogram
  };
  void OnStart(const std::string& id, const std::string& device);
  void OnProgress(const std::string& id, const ProgressEvent& e);
  void OnFinish(const std::string& id, FinalState state, const std::string& detail,
                double seconds);

  Store* const store_;
  Metrics* const metrics_;
  ModelRegistry* const models_;
  Scheduler* scheduler_ = nullptr;

  absl::Mutex mu_;
  std::map<std::string, Live> live_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every change
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace candies::server
