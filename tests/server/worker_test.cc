// Jobs in worker processes (server/process_backend.h) under the real
// scheduler and the real candies-worker: a worker that segfaults, runs out of
// memory, hangs or exits ends its job FAILED (or DEADLINE_EXCEEDED /
// CANCELLED) with the reason, while a concurrent real job (kind "cluster" on a
// small embedding) succeeds with the right clusters. Two jobs at once on two
// workers give the bit-identical result of the same job run alone.
#include <unistd.h>

#include <iostream>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "candies/v1/worker.pb.h"
#include "core/io/h5ad.h"
#include "core/util/sibling_executable.h"
#include "server/process_backend.h"
#include "server/scheduler.h"

namespace candies::server {
namespace {

constexpr int kPerGroup = 30;

Matrix Dense(int64_t rows, int64_t cols, const std::function<float(int64_t, int64_t)>& f) {
  Matrix m;
  m.n_rows = rows;
  m.n_cols = cols;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) m.values.push_back(f(r, c));
  }
  return m;
}

// Two well separated groups of spots in obsm["X_candies"]: re-clustering it
// (kind "cluster") must split them.
void WriteModality(const std::string& path, bool with_embedding) {
  AnnData a;
  const int64_t n = 2 * kPerGroup;
  for (int64_t i = 0; i < n; ++i) a.obs.index.push_back(absl::StrCat("spot", i));
  a.var.index = {"f0", "f1", "f2"};
  a.X = Dense(n, 3, [](int64_t r, int64_t c) { return static_cast<float>((r * 7 + c * 3) % 5); });
  a.obsm["spatial"] = Dense(n, 2, [](int64_t r, int64_t c) {
    return static_cast<float>(c == 0 ? r % 8 : r / 8);
  });
  if (with_embedding) {
    a.obsm["X_candies"] = Dense(n, 4, [](int64_t r, int64_t c) {
      const float center = r < kPerGroup ? 0.0f : 10.0f;
      return center + 0.01f * static_cast<float>((r * 13 + c * 5) % 17);
    });
  }
  ASSERT_TRUE(WriteH5ad(a, path).ok()) << path;
}

class ServerWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/candies_worker_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    WriteModality(dir_ + "/mod1.h5ad", true);
    WriteModality(dir_ + "/mod2.h5ad", false);
    WriteModality(dir_ + "/no_embedding.h5ad", false);
  }
  void TearDown() override {
    scheduler_.reset();
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

  static ProcessBackendOptions Faulty() {
    ProcessBackendOptions o;
    o.allow_test_faults = true;
    return o;
  }

  void Start(ProcessBackendOptions options, int workers = 2,
             std::vector<DeviceSlotGroup> slots = {}) {
    options.worker = SiblingExecutable("candies-worker");
    backend_ = std::make_unique<ProcessBackend>(options, nullptr);
    SchedulerListener l;
    l.on_progress = [this](const std::string& id, const ProgressEvent& e) {
      absl::MutexLock lock(&mu_);
      stages_[id].push_back(e.stage);
      if (!first_progress_.count(id)) first_progress_[id] = absl::Now();
    };
    l.on_finish = [this](const std::string& id, FinalState state, const std::string& detail,
                         double) {
      absl::MutexLock lock(&mu_);
      done_[id] = {state, detail};
      finished_at_[id] = absl::Now();
    };
    SchedulerOptions so;
    so.workers = workers;
    so.slots = std::move(slots);
    scheduler_ = std::make_unique<Scheduler>(so, backend_.get(), l);
  }

  JobSpec Job(const std::string& id, int fault = v1::WORKER_TEST_FAULT_NONE) {
    JobSpec s;
    s.id = id;
    s.owner = id;  // round-robin: every job its own turn
    s.kind = JobKind::kCluster;
    s.n_clusters = 2;
    s.cluster_method = ClusterMethod::kKmeans;
    s.device = "cpu";
    s.threads = 1;
    s.mod1_path = dir_ + "/mod1.h5ad";
    s.mod2_path = dir_ + "/mod2.h5ad";
    s.result_path = dir_ + "/" + id + ".h5ad";
    s.test_fault = fault;
    return s;
  }

  void Submit(const JobSpec& s, absl::Time deadline = absl::InfiniteFuture()) {
    ASSERT_TRUE(scheduler_->Submit(s, 0, deadline).ok());
  }

  std::pair<FinalState, std::string> Wait(const std::string& id, double seconds = 60) {
    absl::MutexLock lock(&mu_);
    auto finished = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_.count(id) > 0; };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&finished), absl::Seconds(seconds)))
        << id << " did not finish";
    if (!finished()) return {FinalState::kFailed, "(did not finish)"};
    std::cout << id << ": " << FinalStateName(done_[id].first) << ": " << done_[id].second << "\n";
    return done_[id];
  }

  // The normal job succeeded and its result splits the two groups.
  void ExpectClustered(const std::string& id) {
    auto [state, detail] = Wait(id);
    ASSERT_EQ(state, FinalState::kSucceeded) << detail;
    EXPECT_EQ(detail, dir_ + "/" + id + ".h5ad");
    absl::StatusOr<AnnData> out = ReadH5ad(detail);
    ASSERT_TRUE(out.ok()) << out.status();
    const Column* c = out->obs.Find("candies_cluster");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(out->n_obs(), 2 * kPerGroup);
    auto label = [&](int64_t i) { return c->categories[static_cast<size_t>(c->codes[i])]; };
    for (int64_t i = 0; i < 2 * kPerGroup; ++i) {
      EXPECT_EQ(label(i), label(i < kPerGroup ? 0 : kPerGroup)) << "spot " << i;
    }
    EXPECT_NE(label(0), label(kPerGroup));
    absl::MutexLock lock(&mu_);
    const std::vector<std::string>& stages = stages_[id];
    EXPECT_NE(std::find(stages.begin(), stages.end(), "cluster"), stages.end())
        << "the worker's progress reached the scheduler";
  }

  std::string dir_;
  std::unique_ptr<ProcessBackend> backend_;
  std::unique_ptr<Scheduler> scheduler_;
  absl::Mutex mu_;
  std::map<std::string, std::pair<FinalState, std::string>> done_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> stages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> first_progress_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> finished_at_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ServerWorkerTest, SegfaultFailsItsJobOnly) {
  Start(Faulty());
  Submit(Job("crash", v1::WORKER_TEST_FAULT_SEGFAULT));
  Submit(Job("normal"));
  auto [state, detail] = Wait("crash");
  EXPECT_EQ(state, FinalState::kFailed);
  EXPECT_NE(detail.find("worker killed by signal 11"), std::string::npos) << detail;
  ExpectClustered("normal");
}

// A cuda slot where no such GPU is (this machine has none; on a GPU machine
// physical GPU 7 is rarely there either): the real worker, started with
// CUDA_VISIBLE_DEVICES=7 and device cuda:0, ends its job FAILED saying so,
// while the cpu slot's job runs.
TEST_F(ServerWorkerTest, CudaSlotWithoutThatGpuFailsClearly) {
  const char* old = getenv("CUDA_VISIBLE_DEVICES");
  const std::string saved = old == nullptr ? "" : old;
  unsetenv("CUDA_VISIBLE_DEVICES");
  Start(ProcessBackendOptions(), 2, {{"cuda:7", 1}, {"cpu", 1}});
  Submit(Job("gpu"));
  Submit(Job("normal"));
  auto [state, detail] = Wait("gpu");
  if (old != nullptr) setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
  EXPECT_EQ(state, FinalState::kFailed);
  // ResolveDevice's refusal ("this build of LibTorch sees no CUDA device",
  // or "no CUDA device 0" on a CUDA build), then the slot it was.
  EXPECT_NE(detail.find("device: "), std::string::npos) << detail;
  EXPECT_NE(detail.find("CUDA device"), std::string::npos) << detail;
  EXPECT_NE(detail.find("(job on cuda:7: the worker saw CUDA_VISIBLE_DEVICES='7')"), std::string::npos)
      << detail;
  ExpectClustered("normal");
}

TEST_F(ServerWorkerTest, MemoryLimitFailsItsJobOnly) {
  ProcessBackendOptions o = Faulty();
  o.max_memory_bytes = int64_t{1} << 30;  // RLIMIT_DATA: the real job needs far less
  Start(o);
  Submit(Job("hog", v1::WORKER_TEST_FAULT_ALLOCATE));
  Submit(Job("normal"));
  auto [state, detail] = Wait("hog");
  EXPECT_EQ(state, FinalState::kFailed);
  EXPECT_NE(detail.find(absl::StrCat("out of memory (limit ", o.max_memory_bytes, " bytes")),
            std::string::npos)
      << detail;
  ExpectClustered("normal");
}

TEST_F(ServerWorkerTest, HangPastDeadlineIsKilled) {
  Start(Faulty());
  Submit(Job("hang", v1::WORKER_TEST_FAULT_HANG), absl::Now() + absl::Seconds(2));
  Submit(Job("normal"));
  auto [state, detail] = Wait("hang", 30);
  EXPECT_EQ(state, FinalState::kDeadlineExceeded);
  EXPECT_NE(detail.find("deadline exceeded"), std::string::npos) << detail;
  ExpectClustered("normal");
}

TEST_F(ServerWorkerTest, HangPastWorkerTimeoutFails) {
  ProcessBackendOptions o = Faulty();
  o.timeout_seconds = 4;  // the normal job needs about a second
  Start(o);
  Submit(Job("hang", v1::WORKER_TEST_FAULT_HANG));
  Submit(Job("normal"));
  auto [state, detail] = Wait("hang", 30);
  EXPECT_EQ(state, FinalState::kFailed);
  EXPECT_NE(detail.find("time limit exceeded"), std::string::npos) << detail;
  EXPECT_NE(detail.find("worker-timeout-seconds = 4"), std::string::npos) << detail;
  ExpectClustered("normal");
}

TEST_F(ServerWorkerTest, CancelKillsTheWorker) {
  Start(Faulty(), 1);
  Submit(Job("hang", v1::WORKER_TEST_FAULT_HANG));
  // Running: the hanging worker never returns by itself.
  for (int i = 0; i < 200 && scheduler_->running() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(scheduler_->Cancel("hang").ok());
  auto [state, detail] = Wait("hang", 10);
  EXPECT_EQ(state, FinalState::kCancelled) << detail;
  // The single worker slot is free again.
  Submit(Job("normal"));
  ExpectClustered("normal");
}

TEST_F(ServerWorkerTest, ExitWithoutResultAndJobErrorsAreReported) {
  Start(Faulty());
  Submit(Job("exit", v1::WORKER_TEST_FAULT_EXIT));
  JobSpec bad = Job("bad");
  bad.mod1_path = dir_ + "/no_embedding.h5ad";
  Submit(bad);
  auto [state, detail] = Wait("exit");
  EXPECT_EQ(state, FinalState::kFailed);
  EXPECT_NE(detail.find("worker exited with code 7 without a result"), std::string::npos) << detail;
  auto [bad_state, bad_detail] = Wait("bad");
  EXPECT_EQ(bad_state, FinalState::kFailed);
  // The pipeline's own error, as a local run prints it.
  EXPECT_NE(bad_detail.find("obsm[\"X_candies\"] is missing"), std::string::npos) << bad_detail;
}

TEST_F(ServerWorkerTest, FaultsAreIgnoredUnlessAllowed) {
  ProcessBackendOptions o;
  o.allow_test_faults = false;  // as in candiesd: no config key turns it on
  Start(o);
  EXPECT_EQ(backend_->WorkerArgs().size(), 1u);
  Submit(Job("normal", v1::WORKER_TEST_FAULT_SEGFAULT));
  ExpectClustered("normal");
}

// Issue 15: each job has its own process, so its random streams (weight
// initialisation, contrastive sampling, k-means++ starts) are its own. The same
// job (same seed) run alone and run twice at once on two workers gives
// bit-identical embeddings and domains. Kind "full" on a small simulated
// section: GAEs, the k-fold denoiser, the integration and k-means, so every
// random stream of a job is covered.
TEST_F(ServerWorkerTest, ConcurrentJobsAreBitIdenticalToAJobRunAlone) {
  const std::string sim = dir_ + "/sim";
  const std::string cmd = absl::StrCat(
      "'", SiblingExecutable("candies"), "' simulate --out '", sim,
      "' --grid 10 --n-genes 100 --rna-markers 10 --n-proteins 20 --protein-markers 4 --seed 2 >/dev/null");
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  auto job = [&](const std::string& id) {
    JobSpec s;
    s.id = id;
    s.owner = id;
    s.kind = JobKind::kFull;
    s.n_clusters = 4;
    s.seed = 11;
    s.device = "cpu";
    s.threads = 1;
    s.mod1_path = sim + "/rna.h5ad";
    s.mod2_path = sim + "/protein.h5ad";
    s.result_path = dir_ + "/" + id + ".h5ad";
    return s;
  };
  Start(ProcessBackendOptions{}, 2);
  Submit(job("alone"));
  ASSERT_EQ(Wait("alone", 300).first, FinalState::kSucceeded);
  const absl::Time t0 = absl::Now();
  Submit(job("a"));
  Submit(job("b"));
  ASSERT_EQ(Wait("a", 300).first, FinalState::kSucceeded);
  ASSERT_EQ(Wait("b", 300).first, FinalState::kSucceeded);
  {
    // Both workers were computing at the same time: each reported progress
    // before the other finished.
    absl::MutexLock lock(&mu_);
    ASSERT_EQ(first_progress_.count("a") + first_progress_.count("b"), 2u);
    EXPECT_LT(first_progress_["a"], finished_at_["b"]);
    EXPECT_LT(first_progress_["b"], finished_at_["a"]);
    EXPECT_GT(first_progress_["a"], t0);
  }
  absl::StatusOr<AnnData> alone = ReadH5ad(dir_ + "/alone.h5ad");
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_EQ(alone->obsm.count("X_candies"), 1u);
  ASSERT_EQ(alone->obsm.count("X_candies_denoised"), 1u) << "the denoiser ran";
  const Column* alone_domains = alone->obs.Find("candies_cluster");
  ASSERT_NE(alone_domains, nullptr);
  for (const std::string id : {"a", "b"}) {
    absl::StatusOr<AnnData> out = ReadH5ad(dir_ + "/" + id + ".h5ad");
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->obsm.size(), alone->obsm.size()) << id;
    for (const auto& [key, m] : alone->obsm) {
      ASSERT_EQ(out->obsm.count(key), 1u) << id << ": obsm[" << key << "]";
      const Matrix& o = out->obsm.at(key);
      EXPECT_EQ(o.n_rows, m.n_rows) << id << ": obsm[" << key << "]";
      EXPECT_EQ(o.n_cols, m.n_cols) << id << ": obsm[" << key << "]";
      // Bit for bit: == on floats (no tolerance).
      EXPECT_TRUE(o.values == m.values) << id << ": obsm[" << key << "] differs from the job run alone";
    }
    const Column* domains = out->obs.Find("candies_cluster");
    ASSERT_NE(domains, nullptr) << id;
    EXPECT_EQ(domains->categories, alone_domains->categories) << id;
    EXPECT_EQ(domains->codes, alone_domains->codes) << id;
  }
}

}  // namespace
}  // namespace candies::server
