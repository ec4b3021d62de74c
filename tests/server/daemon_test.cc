// RunDaemon end to end in-process: listens on 127.0.0.1:0, writes
// candiesd.port, serves requests, runs a job that a "crashed" previous process
// left RUNNING, and stops cleanly on SIGTERM (sent to its thread only).
#include "server/daemon.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "candies/v1/candies.grpc.pb.h"
#include "core/io/h5ad.h"
#include "server/store.h"

namespace candies::server {
namespace {
namespace fs = std::filesystem;

// Counts the nonzero entries of mod1's X and writes the count as a 1x1 result.
class NnzBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink&,
                                  const CancelToken*) override {
    auto a = ReadH5ad(spec.mod1_path);
    if (!a.ok()) return a.status();
    const Matrix x = ToDense(a->X);
    float nnz = 0;
    for (float v : x.values) nnz += v != 0;
    AnnData out;
    out.X = Matrix::Dense(1, 1, {nnz});
    out.obs.index = {"nnz"};
    out.var.index = {"count"};
    if (auto s = WriteH5ad(out, spec.result_path); !s.ok()) return s;
    return spec.result_path;
  }
};

TEST(DaemonTest, ServesRequeuedJobAndStopsOnSigterm) {
  const std::string dir = (fs::path(::testing::TempDir()) / "candies_daemon_test").string();
  fs::remove_all(dir);
  {
    // State a killed daemon leaves: a dataset and a job marked RUNNING.
    auto store = Store::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    AnnData a;
    a.X = Matrix::Dense(2, 3, {0, 1, 2, 0, 0, 5});
    a.obs.index = {"a", "b"};
    a.var.index = {"x", "y", "z"};
    a.obsm["spatial"] = Matrix::Dense(2, 2, {0, 0, 1, 1});
    v1::Dataset d;
    d.set_id("ds-1");
    ASSERT_TRUE((*store)->PutDataset(d, a).ok());
    v1::Job job;
    job.set_id("job-1");
    job.set_state(v1::JOB_STATE_RUNNING);
    job.set_attempt(1);
    job.mutable_spec()->set_mod1_dataset("ds-1");
    job.mutable_spec()->set_mod2_dataset("ds-1");
    job.mutable_spec()->set_n_clusters(2);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    job.mutable_spec()->set_kind_text("full");  // a row stored before the enums
#pragma GCC diagnostic pop
    ASSERT_TRUE((*store)->PutJob(job).ok());
  }
  DaemonConfig config;
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "";
  config.data_dir = dir;
  config.insecure_dev_mode = true;  // loopback, no credentials: the dev path
  NnzBackend backend;
  int rc = -1;
  std::thread daemon([&] { rc = RunDaemon(config, &backend); });
  const std::string port_file = dir + "/candiesd.port";
  for (int i = 0; i < 400 && !fs::exists(port_file); ++i) absl::SleepFor(absl::Milliseconds(10));
  std::string address;
  std::ifstream(port_file) >> address;
  ASSERT_TRUE(absl::StartsWith(address, "127.0.0.1:")) << address;
  EXPECT_NE(address, "127.0.0.1:0");

  auto stub = v1::Candies::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::Job job;
  for (int i = 0; i < 400; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetJobRequest req;
    req.set_id("job-1");
    ASSERT_TRUE(stub->GetJob(&ctx, req, &job).ok());
    if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.attempt(), 2);
  auto result = ReadH5ad(dir + "/results/job-1.h5ad");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(ToDense(result->X).values, std::vector<float>{3});

  pthread_kill(daemon.native_handle(), SIGTERM);
  daemon.join();
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace candies::server
