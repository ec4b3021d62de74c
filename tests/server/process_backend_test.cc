// What ProcessBackend starts a worker with, for each device slot: the real
// spawn code (fork/exec under the sandbox's limits) runs a stand-in worker
// script that keeps the WorkerJob it was sent and says on stderr which
// CUDA_VISIBLE_DEVICES it saw; the job's error carries the worker's last words.
// (The real candies-worker on a cuda slot is tests/server/worker_test.cc.)
#include "server/process_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "candies/v1/worker.pb.h"
#include "server/scheduler.h"
#include "server/worker_protocol.h"

namespace candies::server {
namespace {

class ProcessBackendEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/candies_process_backend_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string script = absl::StrCat(
        "#!/bin/sh\ncat > '", dir_, "/job.pb'\n",
        "echo \"saw CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}.\" >&2\nexit 9\n");
    std::ofstream(dir_ + "/worker") << script;
    chmod((dir_ + "/worker").c_str(), 0755);
    const char* old = getenv("CUDA_VISIBLE_DEVICES");
    if (old != nullptr) saved_ = old;
    had_ = old != nullptr;
  }
  void TearDown() override {
    if (had_) {
      setenv("CUDA_VISIBLE_DEVICES", saved_.c_str(), 1);
    } else {
      unsetenv("CUDA_VISIBLE_DEVICES");
    }
    std::filesystem::remove_all(dir_);
  }
  ProcessBackendOptions Options() const {
    ProcessBackendOptions o;
    o.worker = dir_ + "/worker";
    o.timeout_seconds = 60;
    return o;
  }
  // Runs a job on `device`; returns what the worker saw ("" when it was not started).
  std::string SeenBy(const std::string& device, std::string* worker_device) {
    std::filesystem::remove(dir_ + "/job.pb");
    ProcessBackend backend(Options(), nullptr);
    JobSpec spec;
    spec.id = "job-env";
    spec.device = device;
    absl::StatusOr<std::string> r = backend.Run(spec, nullptr, nullptr);
    EXPECT_FALSE(r.ok());
    std::ifstream in(dir_ + "/job.pb", std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    std::string frame = bytes.str();
    v1::WorkerJob job;
    if (TakeFrame(&frame, &job).value_or(false)) *worker_device = job.device();
    const std::string msg(r.status().message());
    const size_t at = msg.find("saw CUDA_VISIBLE_DEVICES=");
    if (at == std::string::npos) return msg;
    return msg.substr(at, msg.find('.', at) - at);
  }

  std::string dir_, saved_;
  bool had_ = false;
};

TEST_F(ProcessBackendEnvTest, WorkerSeesOnlyItsSlotsDevice) {
  unsetenv("CUDA_VISIBLE_DEVICES");
  std::string device;
  EXPECT_EQ(SeenBy("cuda:1", &device), "saw CUDA_VISIBLE_DEVICES=1");
  EXPECT_EQ(device, "cuda:0");
  EXPECT_EQ(SeenBy("cpu", &device), "saw CUDA_VISIBLE_DEVICES=");
  EXPECT_EQ(device, "cpu");
  // Without device-slots, device auto: the environment as it is.
  EXPECT_EQ(SeenBy("auto", &device), "saw CUDA_VISIBLE_DEVICES=unset");
  EXPECT_EQ(device, "auto");
}

TEST_F(ProcessBackendEnvTest, CudaIndexCountsTheDaemonsVisibleGpus) {
  setenv("CUDA_VISIBLE_DEVICES", "5,6", 1);
  std::string device;
  EXPECT_EQ(SeenBy("cuda:1", &device), "saw CUDA_VISIBLE_DEVICES=6");
  EXPECT_EQ(device, "cuda:0");
  EXPECT_EQ(SeenBy("auto", &device), "saw CUDA_VISIBLE_DEVICES=5,6");
  // A slot beyond the daemon's GPUs: a clear error, no worker started.
  device.clear();
  const std::string err = SeenBy("cuda:2", &device);
  EXPECT_NE(err.find("no cuda:2"), std::string::npos) << err;
  EXPECT_NE(err.find("device-slots"), std::string::npos) << err;
  EXPECT_EQ(device, "");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/job.pb"));
}

TEST_F(ProcessBackendEnvTest, SchedulerSlotReachesTheWorker) {
  unsetenv("CUDA_VISIBLE_DEVICES");
  ProcessBackend backend(Options(), nullptr);
  absl::Mutex mu;
  std::string started_on, error;
  bool done = false;
  SchedulerListener l;
  l.on_start = [&](const std::string&, const std::string& device) {
    absl::MutexLock lock(&mu);
    started_on = device;
  };
  l.on_finish = [&](const std::string&, FinalState, const std::string& detail, double) {
    absl::MutexLock lock(&mu);
    error = detail;
    done = true;
  };
  SchedulerOptions o;
  o.slots = {{"cuda:3", 1}};
  Scheduler sched(o, &backend, l);
  JobSpec spec;
  spec.id = "job-slot";
  spec.device = "auto";  // what the service sets; the slot decides
  ASSERT_TRUE(sched.Submit(spec, 0, absl::InfiniteFuture()).ok());
  absl::MutexLock lock(&mu);
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30)));
  EXPECT_EQ(started_on, "cuda:3");
  EXPECT_NE(error.find("saw CUDA_VISIBLE_DEVICES=3."), std::string::npos) << error;
}

}  // namespace
}  // namespace candies::server
