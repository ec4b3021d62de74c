#include "server/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>
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

}  // namespace
}  // namespace candies::server
