// The gRPC service in-process on 127.0.0.1:0 with a backend that computes
// per-gene means of mod1 and writes them as the result .h5ad.
#include "server/service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"

namespace candies::server {
namespace {
namespace fs = std::filesystem;

class MeanBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink& progress,
                                  const CancelToken* cancel) override {
    auto a = ReadH5ad(spec.mod1_path);
    if (!a.ok()) return a.status();
    Matrix x = ToDense(a->X);
    std::vector<float> mean(static_cast<size_t>(x.n_cols), 0.f);
    for (int64_t i = 0; i < x.n_rows; ++i) {
      for (int64_t j = 0; j < x.n_cols; ++j) mean[j] += x.values[i * x.n_cols + j] / x.n_rows;
      ProgressEvent e;
      e.stage = "mean";
      e.step = i + 1;
      e.total_steps = x.n_rows;
      if (ReportAndCheckCancel(progress, cancel, e)) return absl::CancelledError("cancelled");
    }
    AnnData out;
    out.X = Matrix::Dense(1, x.n_cols, mean);
    out.obs.index = {"mean"};
    out.var.index = a->var.index;
    absl::Status s = WriteH5ad(out, spec.result_path);
    if (!s.ok()) return s;
    return spec.result_path;
  }
};

// Holds every job (reporting stage "gate") until it is cancelled: the queue
// behind it stays put while the test inspects it.
class GateBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec&, const ProgressSink& progress,
                                  const CancelToken* cancel) override {
    {
      absl::MutexLock lock(&mu_);
      ++started_;
    }
    ProgressEvent e;
    e.stage = "gate";
    while (!ReportAndCheckCancel(progress, cancel, e)) absl::SleepFor(absl::Milliseconds(5));
    return absl::CancelledError("cancelled at gate");
  }
  int started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }

 private:
  absl::Mutex mu_;
  int started_ = 0;
};

class ServiceTest : public ::testing::Test {
 protected:
  virtual JobBackend* backend() { return &backend_; }
  virtual int max_queue() { return 1000; }
  void SetUp() override {
    dir_ = (fs::path(::testing::TempDir()) / "candies_service_test").string();
    fs::remove_all(dir_);
    auto store = Store::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ServiceOptions opt;
    opt.max_upload_bytes = 4096;
    opt.allowed_dirs = {dir_ + "/datasets"};
    opt.scheduler.max_queue = max_queue();
    service_ = std::make_unique<CandiesService>(opt, store_.get(), backend(), &metrics_);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    stub_ = v1::Candies::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    service_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    c->AddMetadata("x-candies-owner", "alice");
    return c;
  }
  // Uploads n_obs x n_vars with X[i][j] = i + 10 j, in blocks of 2 rows.
  grpc::Status Upload(int n_obs, int n_vars, v1::Dataset* out, int spatial_values = -1,
                      bool bad_checksum = false) {
    auto ctx = Ctx();
    auto w = stub_->UploadDataset(ctx.get(), out);
    v1::UploadChunk h;
    h.mutable_header()->set_name("rna");
    h.mutable_header()->set_kind(v1::MODALITY_KIND_RNA);
    h.mutable_header()->set_n_obs(n_obs);
    h.mutable_header()->set_n_vars(n_vars);
    const int ns = spatial_values < 0 ? 2 * n_obs : spatial_values;
    for (int i = 0; i < ns; ++i) h.mutable_header()->add_spatial(static_cast<float>(i));
    w->Write(h);
    uint64_t fnv = 14695981039346656037ull;
    for (int i = 0; i < n_obs; i += 2) {
      v1::UploadChunk c;
      for (int r = i; r < std::min(n_obs, i + 2); ++r) {
        for (int j = 0; j < n_vars; ++j) c.mutable_rows()->add_values(static_cast<float>(r + 10 * j));
      }
      fnv = Fnv1a64(c.rows().values().data(), c.rows().values_size() * sizeof(float), fnv);
      if (i + 2 >= n_obs) c.set_checksum_fnv1a64(bad_checksum ? fnv + 1 : fnv);
      w->Write(c);
    }
    w->WritesDone();
    return w->Finish();
  }

  // The counter/gauge value of `name` with exactly these labels; -1 if absent.
  double MetricValue(const std::string& name, std::map<std::string, std::string> labels) {
    for (const auto& family : metrics_.registry().Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        std::map<std::string, std::string> got;
        for (const auto& l : m.label) got[l.name] = l.value;
        if (got == labels) return family.type == prometheus::MetricType::Gauge ? m.gauge.value
                                                                                : m.counter.value;
      }
    }
    return -1;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  MeanBackend backend_;
  Metrics metrics_;
  std::unique_ptr<CandiesService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Candies::Stub> stub_;
};

TEST_F(ServiceTest, UploadSubmitWatchFetch) {
  v1::Dataset d;
  grpc::Status s = Upload(5, 3, &d);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(d.n_obs(), 5);
  EXPECT_EQ(d.owner(), "alice");

  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(3);
  v1::Job job;
  s = stub_->SubmitJob(Ctx().get(), req, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.spec().kind(), "full");

  v1::WatchJobRequest wr;
  wr.set_id(job.id());
  auto wctx = Ctx();
  auto reader = stub_->WatchJob(wctx.get(), wr);
  v1::JobEvent e, last;
  while (reader->Read(&e)) last = e;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.state(), v1::JOB_STATE_SUCCEEDED) << last.error();

  v1::FetchResultRequest fr;
  fr.set_id(job.id());
  auto fctx = Ctx();
  auto fetch = stub_->FetchResult(fctx.get(), fr);
  std::string bytes;
  v1::ResultChunk c;
  while (fetch->Read(&c)) bytes += c.data();
  ASSERT_TRUE(fetch->Finish().ok());
  const std::string out = dir_ + "/fetched.h5ad";
  std::ofstream(out, std::ios::binary) << bytes;
  auto result = ReadH5ad(out);
  ASSERT_TRUE(result.ok()) << result.status();
  // Column means of X[i][j] = i + 10 j over i < 5: 2 + 10 j.
  EXPECT_EQ(ToDense(result->X).values, (std::vector<float>{2, 12, 22}));

  v1::ListJobsRequest lr;
  lr.set_state(v1::JOB_STATE_SUCCEEDED);
  v1::ListJobsResponse lresp;
  ASSERT_TRUE(stub_->ListJobs(Ctx().get(), lr, &lresp).ok());
  ASSERT_EQ(lresp.jobs_size(), 1);
  EXPECT_EQ(lresp.jobs(0).owner(), "alice");

  // Metrics saw the job, the RPCs and the bytes.
  EXPECT_EQ(MetricValue("candies_jobs_total", {{"kind", "full"}, {"state", "SUCCEEDED"}}), 1);
  EXPECT_EQ(MetricValue("candies_rpcs_total", {{"method", "SubmitJob"}, {"code", "OK"}}), 1);
  EXPECT_EQ(MetricValue("candies_bytes_total", {{"direction", "upload"}}), 5 * 3 * 4);
  EXPECT_EQ(MetricValue("candies_bytes_total", {{"direction", "download"}}),
            static_cast<double>(bytes.size()));
}

TEST_F(ServiceTest, BadRequestsNameTheField) {
  v1::Dataset d;
  grpc::Status s = Upload(4, 2, &d, /*spatial_values=*/3);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("header.spatial"), std::string::npos) << s.error_message();
  {
    auto ctx = Ctx();
    auto w = stub_->UploadDataset(ctx.get(), &d);
    v1::UploadChunk h;
    h.mutable_header()->set_n_obs(2);
    h.mutable_header()->set_n_vars(1);
    h.mutable_header()->add_obs_names("spot");
    h.mutable_header()->add_obs_names("spot");
    for (int i = 0; i < 4; ++i) h.mutable_header()->add_spatial(0);
    w->Write(h);
    w->WritesDone();
    s = w->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("header.obs_names: duplicate 'spot'"), std::string::npos)
        << s.error_message();
  }
  s = Upload(4, 2, &d, -1, /*bad_checksum=*/true);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  s = Upload(100, 100, &d);  // 40000 bytes > max_upload_bytes 4096
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  ASSERT_TRUE(Upload(4, 2, &d).ok());

  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(0);
  v1::Job job;
  s = stub_->SubmitJob(Ctx().get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("n_clusters"), std::string::npos) << s.error_message();
  req.set_n_clusters(2);
  req.set_kind("magic");
  s = stub_->SubmitJob(Ctx().get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("kind"), std::string::npos) << s.error_message();
  req.set_kind("full");
  req.set_mod2_dataset("ds-nope");
  s = stub_->SubmitJob(Ctx().get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("mod2_dataset"), std::string::npos) << s.error_message();

  v1::GetJobRequest gr;
  s = stub_->GetJob(Ctx().get(), gr, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  gr.set_id("job-nope");
  s = stub_->GetJob(Ctx().get(), gr, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::ListJobsRequest lr;
  lr.set_page_size(5000);
  v1::ListJobsResponse lresp;
  s = stub_->ListJobs(Ctx().get(), lr, &lresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("page_size"), std::string::npos);

  // Registration: outside the allowed dirs is refused; inside works.
  v1::RegisterDatasetRequest rr;
  rr.set_path("/etc/hostname");
  s = stub_->RegisterDataset(Ctx().get(), rr, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  auto path = store_->GetDatasetFile(d.id());
  ASSERT_TRUE(path.ok());
  rr.set_path(*path);
  v1::Dataset reg;
  s = stub_->RegisterDataset(Ctx().get(), rr, &reg);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reg.n_obs(), 4);
  EXPECT_EQ(reg.n_vars(), 2);
}

class QueueServiceTest : public ServiceTest {
 protected:
  JobBackend* backend() override { return &gate_; }
  int max_queue() override { return 1; }
  GateBackend gate_;
};

TEST_F(QueueServiceTest, QueuePositionCancelAndFullQueue) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  v1::Job running, queued, rejected;
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &running).ok());
  for (int i = 0; i < 400 && gate_.started() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(gate_.started(), 1);
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &queued).ok());
  EXPECT_EQ(queued.queue_position(), 0);
  EXPECT_EQ(MetricValue("candies_queue_depth", {}), 1);
  EXPECT_EQ(MetricValue("candies_jobs_running", {}), 1);
  grpc::Status s = stub_->SubmitJob(Ctx().get(), req, &rejected);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();

  // WatchJob on the queued job reports its position, then its end.
  v1::WatchJobRequest wr;
  wr.set_id(queued.id());
  auto wctx = Ctx();
  auto reader = stub_->WatchJob(wctx.get(), wr);
  v1::JobEvent e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(e.queue_position(), 0);
  v1::CancelJobRequest cr;
  cr.set_id(queued.id());
  v1::Job after;
  ASSERT_TRUE(stub_->CancelJob(Ctx().get(), cr, &after).ok());
  EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED);
  v1::JobEvent last = e;
  while (reader->Read(&e)) last = e;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.state(), v1::JOB_STATE_CANCELLED);

  // Cancelling the running job ends it at the backend's next check.
  cr.set_id(running.id());
  ASSERT_TRUE(stub_->CancelJob(Ctx().get(), cr, &after).ok());
  v1::GetJobRequest gr;
  gr.set_id(running.id());
  for (int i = 0; i < 400 && after.state() != v1::JOB_STATE_CANCELLED; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
    ASSERT_TRUE(stub_->GetJob(Ctx().get(), gr, &after).ok());
  }
  EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(after.stage(), "gate");
  // A result of a cancelled job cannot be fetched; a second cancel is refused.
  v1::FetchResultRequest fr;
  fr.set_id(running.id());
  auto fctx = Ctx();
  auto fetch = stub_->FetchResult(fctx.get(), fr);
  v1::ResultChunk c;
  while (fetch->Read(&c)) {
  }
  EXPECT_EQ(fetch->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  s = stub_->CancelJob(Ctx().get(), cr, &after);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace candies::server
