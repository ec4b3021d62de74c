#include "server/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace candies::server {
namespace {

// A backend that really works: each job sums a matrix of seed-dependent
// values row by row, one progress event per row, and can be held at a gate
// so that tests control when jobs start finishing.
class SumBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override {
    {
      absl::MutexLock lock(&mu_);
      order_.push_back(spec.id);
      auto open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return gate_open_; };
      // Wait for the gate, waking to notice cancellation.
      while (!gate_open_) {
        mu_.AwaitWithTimeout(absl::Condition(&open), absl::Milliseconds(5));
        if (cancel->cancelled()) return absl::CancelledError("cancelled at gate");
      }
    }
    const int rows = 50, cols = 100;
    double total = 0;
    for (int r = 0; r < rows; ++r) {
      std::vector<double> row(cols);
      std::iota(row.begin(), row.end(), static_cast<double>(spec.seed + r));
      total += std::accumulate(row.begin(), row.end(), 0.0);
      ProgressEvent e;
      e.stage = "sum";
      e.step = r + 1;
      e.total_steps = rows;
      if (ReportAndCheckCancel(progress, cancel, e)) return absl::CancelledError("cancelled");
      if (slow_) absl::SleepFor(absl::Milliseconds(10));
    }
    if (spec.labels_key == "fail") return absl::InvalidArgumentError("labels_key fail requested");
    return absl::StrCat(total);
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    gate_open_ = true;
  }
  std::vector<std::string> order() {
    absl::MutexLock lock(&mu_);
    return order_;
  }
  bool slow_ = false;

 private:
  absl::Mutex mu_;
  bool gate_open_ = false;
  std::vector<std::string> order_;
};

struct Finished {
  FinalState state;
  std::string detail;
  int progress_events = 0;
};

class Recorder {
 public:
  SchedulerListener Listener() {
    SchedulerListener l;
    l.on_progress = [this](const std::string& id, const ProgressEvent&) {
      absl::MutexLock lock(&mu_);
      ++events_[id];
    };
    l.on_finish = [this](const std::string& id, FinalState s, const std::string& d, double) {
      absl::MutexLock lock(&mu_);
      done_[id] = Finished{s, d, events_[id]};
    };
    return l;
  }
  // Waits (bounded) until `n` jobs finished.
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return done_.size();
  }
  Finished Get(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return done_.at(id);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> events_;
  std::map<std::string, Finished> done_;
};

JobSpec Spec(const std::string& id, const std::string& owner, uint64_t seed = 0) {
  JobSpec s;
  s.id = id;
  s.owner = owner;
  s.seed = seed;
  return s;
}

TEST(SchedulerTest, RunsJobsAndReportsRealResults) {
  SumBackend backend;
  backend.Open();
  Recorder rec;
  Scheduler sched({}, &backend, rec.Listener());
  ASSERT_TRUE(sched.Submit(Spec("a", "u", 0), 0, absl::InfiniteFuture()).ok());
  JobSpec bad = Spec("b", "u", 1);
  bad.labels_key = "fail";
  ASSERT_TRUE(sched.Submit(bad, 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(rec.WaitFor(2));
  // sum over r<50, c<100 of (r + c) = 100*1225 + 50*4950.
  EXPECT_EQ(rec.Get("a").state, FinalState::kSucceeded);
  EXPECT_EQ(rec.Get("a").detail, absl::StrCat(100 * 1225 + 50 * 4950));
  EXPECT_EQ(rec.Get("a").progress_events, 50);
  EXPECT_EQ(rec.Get("b").state, FinalState::kFailed);
  EXPECT_NE(rec.Get("b").detail.find("labels_key fail requested"), std::string::npos);
}

TEST(SchedulerTest, PriorityThenRoundRobinAcrossOwners) {
  SumBackend backend;
  Recorder rec;
  Scheduler sched({}, &backend, rec.Listener());
  // "blocker" occupies the single worker at the gate while the rest queue.
  ASSERT_TRUE(sched.Submit(Spec("blocker", "x"), 0, absl::InfiniteFuture()).ok());
  for (int i = 0; i < 200 && backend.order().empty(); ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(backend.order().size(), 1u);
  for (const char* id : {"a1", "a2", "a3"}) {
    ASSERT_TRUE(sched.Submit(Spec(id, "alice"), 0, absl::InfiniteFuture()).ok());
  }
  for (const char* id : {"b1", "b2"}) {
    ASSERT_TRUE(sched.Submit(Spec(id, "bob"), 0, absl::InfiniteFuture()).ok());
  }
  ASSERT_TRUE(sched.Submit(Spec("urgent", "bob"), 5, absl::InfiniteFuture()).ok());
  EXPECT_EQ(sched.QueuePosition("urgent"), 0);
  EXPECT_EQ(sched.QueuePosition("a1"), 1);
  EXPECT_EQ(sched.QueuePosition("b1"), 2);
  EXPECT_EQ(sched.QueuePosition("blocker"), -1);
  EXPECT_EQ(sched.queued(), 6);
  const std::map<std::string, int> want_positions = {{"urgent", 0}, {"a1", 1}, {"b1", 2},
                                                     {"a2", 3},     {"b2", 4}, {"a3", 5}};
  EXPECT_EQ(sched.QueuePositions(), want_positions);
  backend.Open();
  ASSERT_TRUE(rec.WaitFor(7));
  // urgent first; then alice and bob alternate (bob was served by "urgent", so
  // alice goes first), then alice's remaining job.
  const std::vector<std::string> want = {"blocker", "urgent", "a1", "b1", "a2", "b2", "a3"};
  EXPECT_EQ(backend.order(), want);
}

TEST(SchedulerTest, CancelQueuedAndRunning) {
  SumBackend backend;
  Recorder rec;
  Scheduler sched({}, &backend, rec.Listener());
  ASSERT_TRUE(sched.Submit(Spec("run", "u"), 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(sched.Submit(Spec("wait", "u"), 0, absl::InfiniteFuture()).ok());
  for (int i = 0; i < 200 && backend.order().empty(); ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(sched.Cancel("wait").ok());
  ASSERT_TRUE(sched.Cancel("run").ok());
  EXPECT_TRUE(absl::IsNotFound(sched.Cancel("nope")));
  ASSERT_TRUE(rec.WaitFor(2));
  EXPECT_EQ(rec.Get("wait").state, FinalState::kCancelled);
  EXPECT_EQ(rec.Get("run").state, FinalState::kCancelled);
  EXPECT_EQ(backend.order(), std::vector<std::string>{"run"});
}

TEST(SchedulerTest, DeadlinesWhileRunningAndWhileQueued) {
  SumBackend backend;
  Recorder rec;
  Scheduler sched({}, &backend, rec.Listener());
  const absl::Time soon = absl::Now() + absl::Milliseconds(100);
  ASSERT_TRUE(sched.Submit(Spec("running", "u"), 0, soon).ok());
  ASSERT_TRUE(sched.Submit(Spec("queued", "u"), 0, soon).ok());
  ASSERT_TRUE(sched.Submit(Spec("free", "u"), 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(rec.WaitFor(2));
  EXPECT_EQ(rec.Get("running").state, FinalState::kDeadlineExceeded);
  EXPECT_EQ(rec.Get("queued").state, FinalState::kDeadlineExceeded);
  backend.Open();
  ASSERT_TRUE(rec.WaitFor(3));
  EXPECT_EQ(rec.Get("free").state, FinalState::kSucceeded);
}

TEST(SchedulerTest, FullQueueIsResourceExhausted) {
  SumBackend backend;
  Recorder rec;
  SchedulerOptions opt;
  opt.max_queue = 2;
  Scheduler sched(opt, &backend, rec.Listener());
  ASSERT_TRUE(sched.Submit(Spec("r", "u"), 0, absl::InfiniteFuture()).ok());
  for (int i = 0; i < 200 && backend.order().empty(); ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(sched.Submit(Spec("q1", "u"), 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(sched.Submit(Spec("q2", "u"), 0, absl::InfiniteFuture()).ok());
  absl::Status full = sched.Submit(Spec("q3", "u"), 0, absl::InfiniteFuture());
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_NE(full.message().find("max_queue"), std::string::npos);
  backend.Open();
  ASSERT_TRUE(rec.WaitFor(3));
}

TEST(SchedulerTest, ShutdownLeavesInterruptedJobUnreported) {
  SumBackend backend;
  Recorder rec;
  {
    Scheduler sched({}, &backend, rec.Listener());
    ASSERT_TRUE(sched.Submit(Spec("r", "u"), 0, absl::InfiniteFuture()).ok());
    for (int i = 0; i < 200 && backend.order().empty(); ++i) absl::SleepFor(absl::Milliseconds(5));
    sched.Shutdown();
  }
  // The job was started but never reported final: the store keeps it RUNNING
  // and requeues it on the next start.
  EXPECT_EQ(backend.order().size(), 1u);
  EXPECT_EQ(rec.count(), 0u);
}


// Jobs held until released one by one; records where each started and how
// many ran at once on each device.
class SlotBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink&,
                                  const CancelToken* cancel) override {
    absl::MutexLock lock(&mu_);
    started_.push_back(spec.id);
    device_[spec.id] = spec.device;
    const int now = ++running_[spec.device];
    max_[spec.device] = std::max(max_[spec.device], now);
    auto go = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return released_.count(spec.id) > 0; };
    while (!go() && !cancel->cancelled()) mu_.AwaitWithTimeout(absl::Condition(&go), absl::Milliseconds(5));
    --running_[spec.device];
    if (!go()) return absl::CancelledError("cancelled while held");
    if (spec.labels_key == "fail") return absl::InternalError("failed as asked");
    return spec.device;
  }
  void Release(const std::string& id) {
    absl::MutexLock lock(&mu_);
    released_.insert(id);
  }
  // Waits (bounded) until `n` jobs have started.
  bool WaitStarted(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return started_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
  }
  std::vector<std::string> started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }
  std::string device(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return device_[id];
  }
  int max_at_once(const std::string& device) {
    absl::MutexLock lock(&mu_);
    return max_[device];
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> started_;
  std::set<std::string> released_;
  std::map<std::string, std::string> device_;
  std::map<std::string, int> running_, max_;
};

SchedulerOptions Slots(std::vector<DeviceSlotGroup> groups) {
  SchedulerOptions o;
  o.slots = std::move(groups);
  return o;
}

TEST(SchedulerSlotsTest, NeverMoreJobsOnADeviceThanItsSlots) {
  SlotBackend backend;
  Recorder rec;
  Scheduler sched(Slots({{"cuda:0", 1}, {"cuda:1", 1}, {"cpu", 2}}), &backend, rec.Listener());
  EXPECT_EQ(sched.slots(), 4);
  const int n = 12;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(sched.Submit(Spec(absl::StrCat("j", i), "u"), 0, absl::InfiniteFuture()).ok());
  }
  // All four slots fill, and no more: the fifth job waits.
  ASSERT_TRUE(backend.WaitStarted(4));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(backend.started().size(), 4u);
  EXPECT_EQ(sched.running(), 4);
  std::map<std::string, int> on;
  for (const std::string& id : backend.started()) ++on[backend.device(id)];
  const std::map<std::string, int> want = {{"cpu", 2}, {"cuda:0", 1}, {"cuda:1", 1}};
  EXPECT_EQ(on, want);
  // Release in turn; every job ends on the device it started on.
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(backend.WaitStarted(std::min<size_t>(n, i + 4)));
    backend.Release(backend.started()[i]);
  }
  ASSERT_TRUE(rec.WaitFor(n));
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrCat("j", i);
    EXPECT_EQ(rec.Get(id).state, FinalState::kSucceeded);
    EXPECT_EQ(rec.Get(id).detail, backend.device(id));
  }
  EXPECT_EQ(backend.max_at_once("cuda:0"), 1);
  EXPECT_EQ(backend.max_at_once("cuda:1"), 1);
  EXPECT_EQ(backend.max_at_once("cpu"), 2);
}

TEST(SchedulerSlotsTest, SlotComesBackHoweverTheJobEnds) {
  // One slot: a job that kept it would leave every later job queued.
  SlotBackend backend;
  Recorder rec;
  Scheduler sched(Slots({{"cuda:0", 1}}), &backend, rec.Listener());
  JobSpec fail = Spec("fail", "u");
  fail.labels_key = "fail";
  for (const JobSpec& spec : {Spec("ok", "u"), fail, Spec("cancel", "u"), Spec("held", "u"),
                              Spec("last", "u")}) {
    ASSERT_TRUE(sched.Submit(spec, 0, absl::InfiniteFuture()).ok());
  }
  backend.Release("ok");
  backend.Release("fail");
  ASSERT_TRUE(backend.WaitStarted(3));
  EXPECT_EQ(backend.started()[2], "cancel");
  ASSERT_TRUE(sched.Cancel("cancel").ok());
  ASSERT_TRUE(backend.WaitStarted(4));
  EXPECT_EQ(backend.started()[3], "held");
  ASSERT_TRUE(rec.WaitFor(3));
  // "held" has the slot: "last", free to finish, still waits for it.
  backend.Release("last");
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(backend.started().size(), 4u);
  backend.Release("held");
  ASSERT_TRUE(rec.WaitFor(5));
  EXPECT_EQ(rec.Get("ok").state, FinalState::kSucceeded);
  EXPECT_EQ(rec.Get("fail").state, FinalState::kFailed);
  EXPECT_EQ(rec.Get("cancel").state, FinalState::kCancelled);
  EXPECT_EQ(rec.Get("held").state, FinalState::kSucceeded);
  EXPECT_EQ(rec.Get("last").state, FinalState::kSucceeded);
  EXPECT_EQ(rec.Get("last").detail, "cuda:0");
  EXPECT_EQ(backend.max_at_once("cuda:0"), 1);
}

TEST(SchedulerSlotsTest, SlotComesBackAfterADeadline) {
  SlotBackend backend;
  Recorder rec;
  Scheduler sched(Slots({{"cpu", 1}}), &backend, rec.Listener());
  ASSERT_TRUE(sched.Submit(Spec("late", "u"), 0, absl::Now() + absl::Milliseconds(100)).ok());
  ASSERT_TRUE(backend.WaitStarted(1));
  ASSERT_TRUE(sched.Submit(Spec("next", "u"), 0, absl::InfiniteFuture()).ok());
  backend.Release("next");
  ASSERT_TRUE(rec.WaitFor(2));
  EXPECT_EQ(rec.Get("late").state, FinalState::kDeadlineExceeded);
  EXPECT_EQ(rec.Get("next").state, FinalState::kSucceeded);
  EXPECT_EQ(rec.Get("next").detail, "cpu");
}

TEST(SchedulerSlotsTest, PriorityThenRoundRobinAcrossSlots) {
  SlotBackend backend;
  Recorder rec;
  Scheduler sched(Slots({{"cuda:0", 1}, {"cpu", 1}}), &backend, rec.Listener());
  ASSERT_TRUE(sched.Submit(Spec("x1", "x"), 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(sched.Submit(Spec("x2", "x"), 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(backend.WaitStarted(2));
  EXPECT_EQ(backend.device("x1"), "cuda:0");  // the first listed slot first
  EXPECT_EQ(backend.device("x2"), "cpu");
  for (const char* id : {"a1", "a2", "a3"}) {
    ASSERT_TRUE(sched.Submit(Spec(id, "alice"), 0, absl::InfiniteFuture()).ok());
  }
  for (const char* id : {"b1", "b2"}) {
    ASSERT_TRUE(sched.Submit(Spec(id, "bob"), 0, absl::InfiniteFuture()).ok());
  }
  ASSERT_TRUE(sched.Submit(Spec("urgent", "bob"), 5, absl::InfiniteFuture()).ok());
  // Free one slot at a time, alternating devices: each start is the next in
  // queue order, whichever slot freed.
  std::vector<std::string> freed = {"x2", "x1"};
  for (size_t k = 0; k < 6; ++k) {
    backend.Release(freed[k]);
    ASSERT_TRUE(backend.WaitStarted(3 + k));
    freed.push_back(backend.started()[2 + k]);
  }
  for (const std::string& id : backend.started()) backend.Release(id);
  ASSERT_TRUE(rec.WaitFor(8));
  const std::vector<std::string> want = {"x1", "x2", "urgent", "a1", "b1", "a2", "b2", "a3"};
  EXPECT_EQ(backend.started(), want);
  EXPECT_EQ(backend.device("urgent"), "cpu");  // x2's slot
  EXPECT_EQ(backend.device("a1"), "cuda:0");   // x1's slot
  EXPECT_EQ(backend.max_at_once("cuda:0"), 1);
  EXPECT_EQ(backend.max_at_once("cpu"), 1);
}

TEST(SchedulerSlotsTest, WithoutSlotsJobsKeepTheirDevice) {
  SlotBackend backend;
  Recorder rec;
  SchedulerOptions o;
  o.workers = 2;
  Scheduler sched(o, &backend, rec.Listener());
  EXPECT_EQ(sched.slots(), 2);
  JobSpec spec = Spec("j", "u");
  spec.device = "cuda:1";
  backend.Release("j");
  ASSERT_TRUE(sched.Submit(spec, 0, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(rec.WaitFor(1));
  EXPECT_EQ(rec.Get("j").detail, "cuda:1");
}

}  // namespace
}  // namespace candies::server
