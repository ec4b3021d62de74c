// The test fixture of the gRPC service: the service in-process on
// 127.0.0.1:0 with small backends that really compute, three identities
// (alice and bob: users, root: admin) in a token file. Shared by
// service_test.cc and security_test.cc.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "core/util/fnv1a.h"
#include "server/auth.h"
#include "server/service.h"
#include "server/token_file.h"

namespace candies::server::service_testing {
namespace fs = std::filesystem;


// A "trained model" of the mean backend: a folder whose file `bytes` holds
// its size. Jobs that apply it add its size to every mean (visible in the test).
class ByteModel : public ResidentModel {
 public:
  explicit ByteModel(int64_t bytes) : bytes_(bytes) {}
  int64_t bytes() const override { return bytes_; }
  Info info() const override { return Info{"mod1", "rna", "rna", 0, 0}; }

 private:
  int64_t bytes_;
};

class MeanBackend : public JobBackend {
 public:
  absl::StatusOr<std::shared_ptr<const ResidentModel>> LoadModel(const std::string& dir) override {
    std::ifstream in(dir + "/bytes");
    int64_t n = 0;
    if (!(in >> n)) return absl::NotFoundError("no model in " + dir);
    return std::shared_ptr<const ResidentModel>(std::make_shared<ByteModel>(n));
  }
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
    if (spec.model != nullptr) {
      for (float& m : mean) m += static_cast<float>(spec.model->bytes());
    }
    if (!spec.save_model_dir.empty()) {
      fs::create_directories(spec.save_model_dir);
      std::ofstream(spec.save_model_dir + "/bytes") << x.n_cols * 4;
    }
    AnnData out;
    out.X = Matrix::Dense(1, x.n_cols, mean);
    out.obs.index = {"mean"};
    out.obs.Set(Column::Categorical("candies_cluster", {"3"}));
    out.var.index = a->var.index;
    out.obsm["X_candies"] = Matrix::Dense(1, x.n_cols, mean);
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
  virtual int max_queued_per_owner() { return 100; }
  virtual void Configure(ServiceOptions&) {}  // more options, per fixture
  void SetUp() override {
    // One folder per test: ctest runs the cases of this fixture in parallel.
    dir_ = (fs::path(::testing::TempDir()) /
            absl::StrCat("candies_service_test_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    auto store = Store::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    // Three identities: alice and bob (users), root (admin).
    std::vector<TokenEntry> entries;
    for (const auto& [name, role] : {std::pair<std::string, std::string>{"alice", "user"},
                                     {"bob", "user"}, {"root", "admin"}}) {
      auto t = MakeToken(name, role);
      ASSERT_TRUE(t.ok()) << t.status();
      tokens_[name] = t->token;
      entries.push_back(t->entry);
    }
    token_file_ = dir_ + "/tokens";
    ASSERT_TRUE(WriteTokenFile(token_file_, entries).ok());
    AuthOptions ao;
    ao.token_file = token_file_;
    auth_ = std::make_unique<Authenticator>(ao);
    ServiceOptions opt;
    opt.auth = auth_.get();
    opt.max_upload_bytes = 4096;
    opt.allowed_dirs = {dir_ + "/datasets"};
    opt.scheduler.max_queue = max_queue();
    opt.max_queued_per_owner = max_queued_per_owner();
    Configure(opt);
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
  // A call as `who` (alice, bob or root); "" = no credential.
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& who = "alice") {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!who.empty()) c->AddMetadata("authorization", "Bearer " + tokens_.at(who));
    return c;
  }
  // Uploads n_obs x n_vars with X[i][j] = i + 10 j, in blocks of 2 rows.
  grpc::Status Upload(int n_obs, int n_vars, v1::Dataset* out, int spatial_values = -1,
                      bool bad_checksum = false, const std::string& who = "alice") {
    auto ctx = Ctx(who);
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
  std::map<std::string, std::string> tokens_;
  std::string token_file_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Store> store_;
  MeanBackend backend_;
  Metrics metrics_;
  std::unique_ptr<CandiesService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Candies::Stub> stub_;
};

// Runs a job to its end and returns its final state.
inline v1::JobState WaitJob(v1::Candies::Stub* stub, const std::string& id, const std::string& token) {
  v1::WatchJobRequest wr;
  wr.set_id(id);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = stub->WatchJob(&ctx, wr);
  v1::JobEvent e, last;
  while (reader->Read(&e)) last = e;
  reader->Finish();
  return last.state();
}

}  // namespace candies::server::service_testing
