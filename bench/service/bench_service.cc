// candiesd's own overheads over loopback gRPC, in-process, with a backend that
// reads mod1 and sums X (so job time is I/O, not science):
//   1. UploadDataset throughput (dense float32, 2 MiB blocks, incl. .h5ad write)
//   2. SubmitJob / GetJob latency and job throughput through the scheduler
//   3. ListJobs latency with many queued jobs (queue-position replay)
//   4. submit-to-start latency on an idle server (SubmitJob sent -> backend Run called)
// Jobs/hour of the real demo job with 1 and 8 clients: bench/service/demo_jobs.sh.
// Usage: bench_service [--jobs N]   (default 200)
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "server/auth.h"
#include "server/service.h"
#include "server/token_file.h"

namespace {
using namespace candies;
using namespace candies::server;
using Clock = std::chrono::steady_clock;

class SumBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec& spec, const ProgressSink&,
                                  const CancelToken*) override {
    auto a = ReadH5ad(spec.mod1_path);
    if (!a.ok()) return a.status();
    double s = 0;
    for (float v : a->X.values) s += v;
    sink_ += s;
    started_.store(Clock::now().time_since_epoch().count());
    return spec.result_path;
  }
  double sink_ = 0;
  std::atomic<Clock::rep> started_{0};  // when the last Run began (after its read)
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

// Every call carries a bearer token, so the numbers include its check.
std::string g_token;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  c->AddMetadata("authorization", "Bearer " + g_token);
  return c;
}

std::string Upload(v1::Candies::Stub* stub, int64_t n_obs, int64_t n_vars) {
  v1::Dataset out;
  auto ctx = Ctx();
  auto w = stub->UploadDataset(ctx.get(), &out);
  v1::UploadChunk h;
  h.mutable_header()->set_n_obs(n_obs);
  h.mutable_header()->set_n_vars(n_vars);
  for (int64_t i = 0; i < 2 * n_obs; ++i) h.mutable_header()->add_spatial(static_cast<float>(i));
  w->Write(h);
  const int64_t rows = std::max<int64_t>(1, (2 << 20) / 4 / n_vars);
  for (int64_t i = 0; i < n_obs; i += rows) {
    v1::UploadChunk c;
    const int64_t end = std::min(n_obs, i + rows);
    c.mutable_rows()->mutable_values()->Resize(static_cast<int>((end - i) * n_vars), 1.0f);
    w->Write(c);
  }
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) {
    std::fprintf(stderr, "upload failed: %s\n", s.error_message().c_str());
    std::exit(1);
  }
  return out.id();
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--jobs" && !absl::SimpleAtoi(argv[i + 1], &jobs)) return 2;
  }
  const std::string dir = (std::filesystem::temp_directory_path() / "candies_bench_service").string();
  std::filesystem::remove_all(dir);
  auto store = Store::Open(dir);
  if (!store.ok()) return 1;
  SumBackend backend;
  Metrics metrics;
  auto token = MakeToken("bench", "admin");
  if (!token.ok() || !WriteTokenFile(dir + "/tokens", {token->entry}).ok()) return 1;
  g_token = token->token;
  AuthOptions auth_options;
  auth_options.token_file = dir + "/tokens";
  Authenticator auth(auth_options);
  ServiceOptions opt;
  opt.auth = &auth;
  opt.max_upload_bytes = int64_t{1} << 32;
  opt.max_queued_per_owner = 100000;  // one owner queues every job here
  CandiesService service(opt, store->get(), &backend, &metrics);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.SetMaxReceiveMessageSize(64 << 20);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  auto stub = v1::Candies::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  std::printf("## UploadDataset (dense float32 over loopback, incl. .h5ad write)\n");
  std::printf("%10s %8s %10s %10s %10s\n", "n_obs", "n_vars", "MiB", "seconds", "MiB/s");
  std::string small_id;
  for (auto [n_obs, n_vars] : {std::pair<int64_t, int64_t>{1000, 1000}, {5000, 2000}, {20000, 2000}}) {
    const auto t0 = Clock::now();
    std::string id = Upload(stub.get(), n_obs, n_vars);
    const double s = Ms(Clock::now() - t0) / 1000;
    const double mib = static_cast<double>(n_obs * n_vars * 4) / (1 << 20);
    std::printf("%10lld %8lld %10.1f %10.3f %10.1f\n", static_cast<long long>(n_obs),
                static_cast<long long>(n_vars), mib, s, mib / s);
    if (small_id.empty()) small_id = id;
  }

  std::printf("\n## %d jobs (1 worker, backend reads a 1000 x 1000 dataset)\n", jobs);
  std::vector<double> submit_ms, get_ms;
  std::vector<std::string> ids;
  const auto t0 = Clock::now();
  for (int i = 0; i < jobs; ++i) {
    v1::SubmitJobRequest req;
    req.set_mod1_dataset(small_id);
    req.set_mod2_dataset(small_id);
    req.set_n_clusters(2);
    v1::Job job;
    const auto t = Clock::now();
    if (grpc::Status st = stub->SubmitJob(Ctx().get(), req, &job); !st.ok()) {
      std::fprintf(stderr, "SubmitJob failed: %s\n", st.error_message().c_str());
      return 1;
    }
    submit_ms.push_back(Ms(Clock::now() - t));
    ids.push_back(job.id());
  }
  // ListJobs while (most of) the queue is still there.
  std::vector<double> list_ms;
  for (int i = 0; i < 5; ++i) {
    v1::ListJobsRequest lr;
    lr.set_page_size(100);
    v1::ListJobsResponse resp;
    const auto t = Clock::now();
    if (!stub->ListJobs(Ctx().get(), lr, &resp).ok()) return 1;
    list_ms.push_back(Ms(Clock::now() - t));
  }
  for (const auto& id : ids) {
    v1::GetJobRequest gr;
    gr.set_id(id);
    v1::Job job;
    while (true) {
      const auto t = Clock::now();
      if (!stub->GetJob(Ctx().get(), gr, &job).ok()) return 1;
      get_ms.push_back(Ms(Clock::now() - t));
      if (job.state() == v1::JOB_STATE_SUCCEEDED) break;
      if (job.state() != v1::JOB_STATE_QUEUED && job.state() != v1::JOB_STATE_RUNNING) return 1;
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  const double total_s = Ms(Clock::now() - t0) / 1000;
  std::printf("%-22s %10s %10s\n", "", "p50 ms", "p99 ms");
  std::printf("%-22s %10.3f %10.3f\n", "SubmitJob", Pct(submit_ms, 0.5), Pct(submit_ms, 0.99));
  std::printf("%-22s %10.3f %10.3f\n", "GetJob", Pct(get_ms, 0.5), Pct(get_ms, 0.99));
  std::printf("%-22s %10.3f %10.3f\n", "ListJobs (page 100)", Pct(list_ms, 0.5), Pct(list_ms, 0.99));
  std::printf("jobs/s end to end: %.1f\n", jobs / total_s);

  // Idle server: time from sending SubmitJob to the backend starting the job.
  // The backend stamps the time after reading mod1, so that read is subtracted
  // by using a dataset of 1 x 1.
  const std::string tiny = Upload(stub.get(), 1, 1);
  std::vector<double> start_ms;
  for (int i = 0; i < 50; ++i) {
    v1::SubmitJobRequest req;
    req.set_mod1_dataset(tiny);
    req.set_mod2_dataset(tiny);
    req.set_n_clusters(1);
    v1::Job job;
    const Clock::rep before = backend.started_.load();
    const auto t = Clock::now();
    if (!stub->SubmitJob(Ctx().get(), req, &job).ok()) return 1;
    while (backend.started_.load() == before) absl::SleepFor(absl::Microseconds(50));
    start_ms.push_back(Ms(Clock::duration(backend.started_.load()) - t.time_since_epoch()));
    // Let it finish so the next one finds the server idle.
    v1::GetJobRequest gr;
    gr.set_id(job.id());
    for (v1::Job j; stub->GetJob(Ctx().get(), gr, &j).ok() && j.state() != v1::JOB_STATE_SUCCEEDED;) {
      absl::SleepFor(absl::Microseconds(200));
    }
  }
  std::printf("submit-to-start on an idle server (incl. reading a 1 x 1 .h5ad): p50 %.2f ms, p99 %.2f ms\n",
              Pct(start_ms, 0.5), Pct(start_ms, 0.99));
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  std::filesystem::remove_all(dir);
  return 0;
}
