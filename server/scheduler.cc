#include "server/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace candies::server {
namespace {

// Without device-slots: `workers` slots of no device of their own.
std::vector<DeviceSlotGroup> Groups(const SchedulerOptions& options) {
  if (!options.slots.empty()) return options.slots;
  return {DeviceSlotGroup{"", std::max(1, options.workers)}};
}

}  // namespace

const char* FinalStateName(FinalState state) {
  switch (state) {
    case FinalState::kSucceeded: return "SUCCEEDED";
    case FinalState::kFailed: return "FAILED";
    case FinalState::kCancelled: return "CANCELLED";
    case FinalState::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
  }
  return "?";
}

Scheduler::Scheduler(SchedulerOptions options, JobBackend* backend, SchedulerListener listener)
    : options_(options), backend_(backend), listener_(std::move(listener)), pool_(Groups(options_)) {
  // One thread per slot, so a free thread always finds a free slot.
  int n = 0;
  {
    absl::MutexLock lock(&mu_);
    n = pool_.size();
  }
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  // Watchdog: expires queued jobs and fires the token of running jobs past
  // their deadline (workers are busy inside the backend).
  workers_.emplace_back([this] {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.deadline_poll);
      std::vector<std::string> expired;
      ExpireLocked(&expired);
      const absl::Time now = absl::Now();
      for (auto& [id, run] : running_) {
        if (!run.deadline_hit && now >= run.deadline) {
          run.deadline_hit = true;
          run.cancel->Cancel();
        }
      }
      if (!expired.empty() && listener_.on_finish) {
        mu_.Unlock();
        for (const auto& id : expired) {
          listener_.on_finish(id, FinalState::kDeadlineExceeded, "deadline exceeded while queued", 0);
        }
        mu_.Lock();
      }
    }
  });
}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    for (auto& [id, run] : running_) run.cancel->Cancel();
  }
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

absl::Status Scheduler::Submit(JobSpec spec, int priority, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("scheduler is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("queue is full (max_queue = ", options_.max_queue, ")"));
  }
  Entry e;
  e.spec = std::move(spec);
  e.priority = priority;
  e.deadline = deadline;
  e.seq = next_seq_++;
  queue_.push_back(std::move(e));
  return absl::OkStatus();
}

size_t Scheduler::PickLocked(const std::map<std::string, uint64_t>& last_served) const {
  auto served = [&](const std::string& owner) -> uint64_t {
    auto it = last_served.find(owner);
    return it == last_served.end() ? 0 : it->second;
  };
  size_t best = 0;
  for (size_t i = 1; i < queue_.size(); ++i) {
    const Entry& a = queue_[i];
    const Entry& b = queue_[best];
    if (a.priority != b.priority) {
      if (a.priority > b.priority) best = i;
      continue;
    }
    const uint64_t sa = served(a.spec.owner), sb = served(b.spec.owner);
    if (sa != sb) {
      if (sa < sb) best = i;
      continue;
    }
    if (a.seq < b.seq) best = i;
  }
  return best;
}

void Scheduler::ExpireLocked(std::vector<std::string>* expired) {
  const absl::Time now = absl::Now();
  auto it = std::remove_if(queue_.begin(), queue_.end(), [&](const Entry& e) {
    if (now < e.deadline) return false;
    expired->push_back(e.spec.id);
    return true;
  });
  queue_.erase(it, queue_.end());
}

std::map<std::string, int> Scheduler::QueuePositions() {
  absl::MutexLock lock(&mu_);
  // Replays the picks on a copy of the queue: O(n^2) on a bounded queue.
  std::vector<Entry> saved = queue_;
  std::map<std::string, uint64_t> served = last_served_;
  uint64_t turn = turn_;
  std::map<std::string, int> positions;
  for (int k = 0; !queue_.empty(); ++k) {
    const size_t i = PickLocked(served);
    positions[queue_[i].spec.id] = k;
    served[queue_[i].spec.owner] = ++turn;
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  queue_ = std::move(saved);
  return positions;
}

int Scheduler::QueuePosition(const std::string& id) {
  const std::map<std::string, int> positions = QueuePositions();
  auto it = positions.find(id);
  return it == positions.end() ? -1 : it->second;
}

int Scheduler::queued() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

int Scheduler::running() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(running_.size());
}

int Scheduler::slots() {
  absl::MutexLock lock(&mu_);
  return pool_.size();
}

absl::Status Scheduler::Cancel(const std::string& id) {
  bool was_queued = false;
  {
    absl::MutexLock lock(&mu_);
    auto run = running_.find(id);
    if (run != running_.end()) {
      run->second.cancel->Cancel();
      return absl::OkStatus();
    }
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [&](const Entry& e) { return e.spec.id == id; });
    if (it == queue_.end()) {
      return absl::NotFoundError(absl::StrCat("job ", id, " is not queued or running"));
    }
    queue_.erase(it);
    was_queued = true;
  }
  if (was_queued && listener_.on_finish) {
    listener_.on_finish(id, FinalState::kCancelled, "cancelled while queued", 0);
  }
  return absl::OkStatus();
}

void Scheduler::WorkerLoop() {
  while (true) {
    Entry job;
    int slot = -1;
    auto cancel = std::make_shared<CancelToken>();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!queue_.empty() && pool_.free() > 0);
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      const size_t i = PickLocked(last_served_);
      job = std::move(queue_[i]);
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
      last_served_[job.spec.owner] = ++turn_;
      running_[job.spec.id] = Running{cancel, job.deadline, false};
      slot = pool_.Acquire();
      if (!pool_.device(slot).empty()) job.spec.device = pool_.device(slot);
    }
    job.spec.deadline = job.deadline;
    const std::string id = job.spec.id;
    if (listener_.on_start) listener_.on_start(id, job.spec.device);
    const absl::Time t0 = absl::Now();
    ProgressSink sink;
    if (listener_.on_progress) {
      sink = [this, id](const ProgressEvent& e) { listener_.on_progress(id, e); };
    }
    absl::StatusOr<std::string> result = backend_->Run(job.spec, sink, cancel.get());
    const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
    bool deadline_hit = false;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      deadline_hit = running_[id].deadline_hit;
      running_.erase(id);
      pool_.Release(slot);
      stopping = stopping_;
    }
    // Interrupted by Shutdown(): not a final state; the store still says
    // RUNNING and the next start queues the job again.
    if (stopping && !result.ok()) return;
    FinalState state = FinalState::kSucceeded;
    std::string detail;
    if (result.ok()) {
      detail = *result;
    } else {
      detail = result.status().ToString();
      if (deadline_hit) {
        state = FinalState::kDeadlineExceeded;
        detail = absl::StrCat("deadline exceeded: stopped after ", absl::SixDigits(seconds),
                              " s running");
      } else if (cancel->cancelled() || absl::IsCancelled(result.status())) {
        state = FinalState::kCancelled;
      } else {
        state = FinalState::kFailed;
      }
    }
    if (listener_.on_finish) listener_.on_finish(id, state, detail, seconds);
  }
}

}  // namespace candies::server
