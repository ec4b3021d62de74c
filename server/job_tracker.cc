#include "server/job_tracker.h"

#include <climits>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"
#include "server/job_vocabulary.h"
#include "server/log.h"

namespace candies::server {

namespace {

v1::JobState ToProto(FinalState s) {
  switch (s) {
    case FinalState::kSucceeded: return v1::JOB_STATE_SUCCEEDED;
    case FinalState::kFailed: return v1::JOB_STATE_FAILED;
    case FinalState::kCancelled: return v1::JOB_STATE_CANCELLED;
    case FinalState::kDeadlineExceeded: return v1::JOB_STATE_DEADLINE_EXCEEDED;
  }
  return v1::JOB_STATE_FAILED;
}

}  // namespace

bool IsFinal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
         s == v1::JOB_STATE_CANCELLED || s == v1::JOB_STATE_DEADLINE_EXCEEDED;
}

JobTracker::JobTracker(Store* store, Metrics* metrics, ModelRegistry* models)
    : store_(store), metrics_(metrics), models_(models) {}

SchedulerListener JobTracker::Listener() {
  SchedulerListener l;
  l.on_start = [this](const std::string& id, const std::string& device) { OnStart(id, device); };
  l.on_progress = [this](const std::string& id, const ProgressEvent& e) { OnProgress(id, e); };
  l.on_finish = [this](const std::string& id, FinalState s, const std::string& d, double t) {
    OnFinish(id, s, d, t);
  };
  return l;
}

void JobTracker::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  ++version_;
}

void JobTracker::UpdateGauges() {
  metrics_->SetQueueDepth(scheduler_->queued());
  metrics_->SetRunning(scheduler_->running());
  metrics_->Refresh();
}

void JobTracker::OnStart(const std::string& id, const std::string& device) {
  auto job = store_->GetJob(id);
  if (job.ok()) {
    job->set_state(v1::JOB_STATE_RUNNING);
    job->set_started_unix(NowUnix());
    job->set_device(device);
    (void)store_->PutJob(*job);
    LogLine("info", "job started",
            {{"job", id}, {"owner", job->owner()}, {"attempt", absl::StrCat(job->attempt())},
             {"device", device}});
  }
  {
    absl::MutexLock lock(&mu_);
    Live& live = live_[id];
    live.event.set_state(v1::JOB_STATE_RUNNING);
    live.event.set_queue_position(-1);
    live.version = ++version_;
  }
  UpdateGauges();
}

void JobTracker::OnProgress(const std::string& id, const ProgressEvent& e) {
  absl::MutexLock lock(&mu_);
  Live& live = live_[id];
  const absl::Time now = absl::Now();
  if (e.stage != live.event.stage()) {
    if (!live.event.stage().empty()) {
      metrics_->StageFinished(live.event.stage(), absl::ToDoubleSeconds(now - live.stage_started));
    }
    live.stage_started = now;
  }
  live.event.set_state(v1::JOB_STATE_RUNNING);
  live.event.set_stage(e.stage);
  live.event.set_step(e.step);
  live.event.set_total(e.total_steps);
  live.event.set_loss(std::isfinite(e.loss) ? e.loss : 0.0);
  live.event.set_eta_seconds(e.eta_seconds);
  live.event.set_queue_position(-1);
  live.version = ++version_;
}

void JobTracker::OnFinish(const std::string& id, FinalState state, const std::string& detail,
                          double seconds) {
  auto job = store_->GetJob(id);
  std::string kind = "full";
  // A trained model is recorded before the job reads SUCCEEDED, so whoever
  // sees the final state finds the model.
  if (job.ok() && state == FinalState::kSucceeded && !job->model_id().empty()) {
    v1::Model m;
    m.set_id(job->model_id());
    m.set_name(job->spec().mod1_dataset() + "+" + job->spec().mod2_dataset());
    m.set_owner(job->owner());
    m.set_created_unix(NowUnix());
    m.set_source_job(id);
    auto added = models_->Add(m);
    if (!added.ok()) {
      LogLine("warn", "trained model not resident",
              {{"job", id}, {"model", m.id()}, {"error", added.status().ToString()}});
    }
  }
  if (job.ok()) {
    job->set_state(ToProto(state));
    job->set_finished_unix(NowUnix());
    if (state != FinalState::kSucceeded) job->set_error(detail);
    kind = KindName(job->spec());
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it != live_.end()) job->set_stage(it->second.event.stage());
  }
  if (state == FinalState::kSucceeded) {
    LogLine("info", "job finished", {{"job", id}, {"kind", kind}, {"state", FinalStateName(state)},
                                     {"seconds", absl::StrCat(seconds)}});
  } else {
    LogLine("warn", "job finished", {{"job", id}, {"kind", kind}, {"state", FinalStateName(state)},
                                     {"seconds", absl::StrCat(seconds)}, {"error", detail}});
  }
  // Metrics before the row: whoever sees the final state also sees it counted.
  metrics_->JobFinished(kind, FinalStateName(state), seconds);
  if (job.ok()) (void)store_->PutJob(*job);
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it != live_.end() && !it->second.event.stage().empty() && state == FinalState::kSucceeded) {
      metrics_->StageFinished(it->second.event.stage(),
                              absl::ToDoubleSeconds(absl::Now() - it->second.stage_started));
    }
    live_.erase(id);  // watchers now read the final row from the store
    ++version_;
  }
  UpdateGauges();
}

void JobTracker::Decorate(v1::Job* job, const std::map<std::string, int>* positions) {
  int position = -1;
  if (job->state() == v1::JOB_STATE_QUEUED) {
    if (positions == nullptr) {
      position = scheduler_->QueuePosition(job->id());
    } else if (auto it = positions->find(job->id()); it != positions->end()) {
      position = it->second;
    }
  }
  job->set_queue_position(position);
  absl::MutexLock lock(&mu_);
  auto it = live_.find(job->id());
  if (it != live_.end() && !it->second.event.stage().empty()) {
    job->set_stage(it->second.event.stage());
  }
}

absl::Status JobTracker::Watch(const std::string& id,
                               const std::function<bool(const v1::JobEvent&)>& write,
                               const std::function<bool()>& cancelled) {
  uint64_t seen = UINT64_MAX;
  int last_position = INT_MIN;
  while (true) {
    CANDIES_ASSIGN_OR_RETURN(v1::Job job, store_->GetJob(id));
    v1::JobEvent e;
    uint64_t now_version = 0;
    {
      absl::MutexLock lock(&mu_);
      now_version = version_;
      auto it = live_.find(id);
      if (it != live_.end() && !IsFinal(job.state())) e = it->second.event;
      if (shutting_down_) return absl::UnavailableError("server is shutting down");
    }
    if (IsFinal(job.state())) {
      e.set_state(job.state());
      e.set_stage(job.stage());
      e.set_error(job.error());
      e.set_queue_position(-1);
      write(e);
      return absl::OkStatus();
    }
    if (e.state() == v1::JOB_STATE_UNSPECIFIED) e.set_state(job.state());
    const int position = e.state() == v1::JOB_STATE_QUEUED ? scheduler_->QueuePosition(id) : -1;
    e.set_queue_position(position);
    if (now_version != seen || position != last_position) {
      if (!write(e)) return absl::CancelledError("client went away");
      seen = now_version;
      last_position = position;
    }
    if (cancelled()) return absl::CancelledError("client went away");
    // Wake on any change, or every 500 ms to notice a cancelled client.
    absl::MutexLock lock(&mu_);
    auto moved = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
    mu_.AwaitWithTimeout(absl::Condition(&moved), absl::Milliseconds(500));
  }
}

}  // namespace candies::server
