// Client commands for candiesd (proto/candies/v1/candies.proto): upload,
// submit, list, status, watch, fetch, cancel. Each takes --server ADDR and
// --owner NAME (sent as x-candies-owner metadata). Ids go to stdout alone on a
// line so that scripts can capture them; everything else goes to stderr.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "candies/v1/candies.grpc.pb.h"
#include "client/cli/args.h"
#include "client/cli/command.h"
#include "core/io/h5ad.h"

namespace candies::cli {
namespace {

// Upload row blocks stay under this many bytes (gRPC's default receive limit
// is 4 MiB; the daemon allows 64 MiB).
constexpr int64_t kUploadBlockBytes = 2 << 20;

std::vector<FlagSpec> WithCommon(std::vector<FlagSpec> specs) {
  specs.push_back({"server", true, "candiesd address", "127.0.0.1:50051"});
  specs.push_back({"owner", true, "owner name sent as x-candies-owner", ""});
  specs.push_back({"timeout", true, "seconds to wait for the server (0: no limit)", "60"});
  specs.push_back({"help", false, "show this help", ""});
  return specs;
}

struct Remote {
  std::unique_ptr<v1::Candies::Stub> stub;
  std::string owner;
  int64_t timeout_s = 60;
  std::unique_ptr<grpc::ClientContext> Ctx(bool bounded = true) const {
    auto c = std::make_unique<grpc::ClientContext>();
    if (bounded && timeout_s > 0) {
      c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    }
    if (!owner.empty()) c->AddMetadata("x-candies-owner", owner);
    return c;
  }
};

int Fail(const char* cmd, const std::string& msg) {
  std::fprintf(stderr, "candies %s: %s\n", cmd, msg.c_str());
  return 1;
}
int Fail(const char* cmd, const grpc::Status& s) {
  return Fail(cmd, absl::StrCat(s.error_code() == grpc::StatusCode::UNAVAILABLE
                                    ? "server unavailable: "
                                    : "",
                                s.error_message(), " (code ", static_cast<int>(s.error_code()), ")"));
}

// Parses args; on --help or error prints and returns the exit code in *rc.
bool Setup(const char* cmd, const std::string& synopsis, const std::vector<std::string>& argv,
           const std::vector<FlagSpec>& specs, size_t n_positional, Args* args, Remote* remote,
           int* rc) {
  auto parsed = Args::Parse(argv, specs);
  if (!parsed.ok()) {
    *rc = Fail(cmd, std::string(parsed.status().message()));
    return false;
  }
  if (parsed->Has("help")) {
    std::fputs(Args::Usage(cmd, synopsis, specs).c_str(), stderr);
    *rc = 0;
    return false;
  }
  if (parsed->positional().size() != n_positional) {
    std::fputs(Args::Usage(cmd, synopsis, specs).c_str(), stderr);
    *rc = 1;
    return false;
  }
  auto timeout = parsed->GetInt("timeout");
  if (!timeout.ok() || *timeout < 0) {
    *rc = Fail(cmd, "--timeout: must be a number of seconds >= 0");
    return false;
  }
  *args = std::move(*parsed);
  remote->stub = v1::Candies::NewStub(
      grpc::CreateChannel(args->Get("server"), grpc::InsecureChannelCredentials()));
  remote->owner = args->Get("owner");
  remote->timeout_s = *timeout;
  return true;
}

const char* StateName(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_QUEUED: return "QUEUED";
    case v1::JOB_STATE_RUNNING: return "RUNNING";
    case v1::JOB_STATE_SUCCEEDED: return "SUCCEEDED";
    case v1::JOB_STATE_FAILED: return "FAILED";
    case v1::JOB_STATE_CANCELLED: return "CANCELLED";
    case v1::JOB_STATE_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    default: return "UNSPECIFIED";
  }
}

std::string Age(int64_t created) {
  const int64_t s = static_cast<int64_t>(std::time(nullptr)) - created;
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s / 3600, "h");
}

int RunUpload(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({{"name", true, "dataset name (default: the file name)", ""},
                                 {"kind", true, "rna | protein | atac", "rna"}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("upload", "FILE.h5ad", argv, specs, 1, &args, &r, &rc)) return rc;
  const std::string path = args.positional()[0];
  const std::string kind = absl::AsciiStrToLower(args.Get("kind"));
  v1::ModalityKind mk = v1::MODALITY_KIND_RNA;
  if (kind == "protein" || kind == "prot" || kind == "adt") {
    mk = v1::MODALITY_KIND_PROTEIN;
  } else if (kind == "atac" || kind == "peaks") {
    mk = v1::MODALITY_KIND_ATAC;
  } else if (kind != "rna") {
    return Fail("upload", "--kind: must be rna, protein or atac");
  }
  auto a = ReadH5ad(path);
  if (!a.ok()) return Fail("upload", std::string(a.status().message()));
  auto sp = a->obsm.find("spatial");
  if (sp == a->obsm.end() || sp->second.n_cols < 2) {
    return Fail("upload", absl::StrCat(path, ": obsm[\"spatial\"] with 2 columns is required"));
  }
  const Matrix spatial = ToDense(sp->second);
  const Matrix x = ToDense(a->X);
  v1::UploadChunk head;
  v1::DatasetHeader* h = head.mutable_header();
  h->set_name(args.Get("name").empty() ? std::filesystem::path(path).filename().string()
                                       : args.Get("name"));
  h->set_kind(mk);
  h->set_n_obs(x.n_rows);
  h->set_n_vars(x.n_cols);
  for (const auto& n : a->obs.index) h->add_obs_names(n);
  for (const auto& n : a->var.index) h->add_var_names(n);
  for (int64_t i = 0; i < spatial.n_rows; ++i) {
    h->add_spatial(spatial.values[i * spatial.n_cols]);
    h->add_spatial(spatial.values[i * spatial.n_cols + 1]);
  }
  v1::Dataset out;
  auto ctx = r.Ctx();
  auto w = r.stub->UploadDataset(ctx.get(), &out);
  bool ok = w->Write(head);
  const int64_t rows_per_block = std::max<int64_t>(1, kUploadBlockBytes / 4 / std::max<int64_t>(1, x.n_cols));
  uint64_t fnv = 14695981039346656037ull;
  for (int64_t i = 0; ok && i < x.n_rows; i += rows_per_block) {
    const int64_t end = std::min(x.n_rows, i + rows_per_block);
    v1::UploadChunk c;
    c.mutable_rows()->mutable_values()->Add(x.values.begin() + i * x.n_cols,
                                            x.values.begin() + end * x.n_cols);
    const auto* p = reinterpret_cast<const unsigned char*>(c.rows().values().data());
    for (size_t k = 0; k < static_cast<size_t>(c.rows().values_size()) * sizeof(float); ++k) {
      fnv = (fnv ^ p[k]) * 1099511628211ull;
    }
    if (end == x.n_rows) c.set_checksum_fnv1a64(fnv);
    ok = w->Write(c);
  }
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) return Fail("upload", s);
  std::fprintf(stderr, "uploaded %s: %lld x %lld (%s)\n", path.c_str(),
               static_cast<long long>(out.n_obs()), static_cast<long long>(out.n_vars()),
               out.name().c_str());
  std::printf("%s\n", out.id().c_str());
  return 0;
}

int RunSubmit(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({{"mod1", true, "dataset id of modality 1 (required)", ""},
                                 {"mod2", true, "dataset id of modality 2 (required)", ""},
                                 {"kind", true, "full | integrate | denoise | cluster", "full"},
                                 {"n-clusters", true, "number of spatial domains (required)", "0"},
                                 {"low-quality", true, "auto | mod1 | mod2", "auto"},
                                 {"preset", true, "fast | paper", "fast"},
                                 {"seed", true, "random seed", "0"},
                                 {"labels-key", true, "obs column with true domains", ""},
                                 {"priority", true, "higher runs first", "0"},
                                 {"deadline-seconds", true, "0: none", "0"}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("submit", "--mod1 ID --mod2 ID --n-clusters K", argv, specs, 0, &args, &r, &rc)) return rc;
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(args.Get("mod1"));
  req.set_mod2_dataset(args.Get("mod2"));
  req.set_kind(args.Get("kind"));
  req.set_low_quality(args.Get("low-quality"));
  req.set_preset(args.Get("preset"));
  req.set_labels_key(args.Get("labels-key"));
  for (const char* f : {"n-clusters", "seed", "priority", "deadline-seconds"}) {
    auto v = args.GetInt(f);
    if (!v.ok()) return Fail("submit", std::string(v.status().message()));
    if (std::string(f) == "n-clusters") req.set_n_clusters(static_cast<int32_t>(*v));
    if (std::string(f) == "seed") req.set_seed(static_cast<uint64_t>(*v));
    if (std::string(f) == "priority") req.set_priority(static_cast<int32_t>(*v));
    if (std::string(f) == "deadline-seconds") req.set_deadline_seconds(*v);
  }
  v1::Job job;
  grpc::Status s = r.stub->SubmitJob(r.Ctx().get(), req, &job);
  if (!s.ok()) return Fail("submit", s);
  std::fprintf(stderr, "submitted %s (queue position %d)\n", job.id().c_str(), job.queue_position());
  std::printf("%s\n", job.id().c_str());
  return 0;
}

int RunList(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({{"state", true, "only jobs in this state (e.g. RUNNING)", ""},
                                 {"datasets", false, "list datasets instead of jobs", ""}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("list", "", argv, specs, 0, &args, &r, &rc)) return rc;
  if (args.Has("datasets")) {
    v1::ListDatasetsResponse resp;
    grpc::Status s = r.stub->ListDatasets(r.Ctx().get(), v1::ListDatasetsRequest(), &resp);
    if (!s.ok()) return Fail("list", s);
    for (const auto& d : resp.datasets()) {
      std::printf("%s %s %lldx%lld %s %s\n", d.id().c_str(), d.name().c_str(),
                  static_cast<long long>(d.n_obs()), static_cast<long long>(d.n_vars()),
                  d.owner().c_str(), Age(d.created_unix()).c_str());
    }
    return 0;
  }
  v1::ListJobsRequest req;
  if (!args.Get("state").empty()) {
    v1::JobState st;
    if (!v1::JobState_Parse(absl::StrCat("JOB_STATE_", absl::AsciiStrToUpper(args.Get("state"))), &st)) {
      return Fail("list", "--state: not a job state (QUEUED, RUNNING, SUCCEEDED, ...)");
    }
    req.set_state(st);
  }
  do {
    v1::ListJobsResponse resp;
    grpc::Status s = r.stub->ListJobs(r.Ctx().get(), req, &resp);
    if (!s.ok()) return Fail("list", s);
    for (const auto& j : resp.jobs()) {
      std::printf("%s %s %s %s %s\n", j.id().c_str(), StateName(j.state()), j.spec().kind().c_str(),
                  j.owner().c_str(), Age(j.created_unix()).c_str());
    }
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  return 0;
}

int RunStatus(const std::vector<std::string>& argv) {
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("status", "JOB", argv, WithCommon({}), 1, &args, &r, &rc)) return rc;
  v1::GetJobRequest req;
  req.set_id(args.positional()[0]);
  v1::Job j;
  grpc::Status s = r.stub->GetJob(r.Ctx().get(), req, &j);
  if (!s.ok()) return Fail("status", s);
  std::printf("id: %s\nstate: %s\nkind: %s\nowner: %s\nattempt: %d\nqueue_position: %d\n"
              "stage: %s\nerror: %s\n",
              j.id().c_str(), StateName(j.state()), j.spec().kind().c_str(), j.owner().c_str(),
              j.attempt(), j.queue_position(), j.stage().c_str(), j.error().c_str());
  return 0;
}

int RunWatch(const std::vector<std::string>& argv) {
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("watch", "JOB", argv, WithCommon({}), 1, &args, &r, &rc)) return rc;
  v1::WatchJobRequest req;
  req.set_id(args.positional()[0]);
  // --timeout bounds the whole watch here (0: until the job ends).
  auto ctx = r.Ctx();
  auto reader = r.stub->WatchJob(ctx.get(), req);
  const bool tty = isatty(fileno(stderr)) != 0;
  v1::JobEvent e, last;
  std::string last_line;
  while (reader->Read(&e)) {
    last = e;
    std::string line;
    if (e.state() == v1::JOB_STATE_QUEUED) {
      line = absl::StrCat("QUEUED position ", e.queue_position());
    } else if (e.total() > 0) {
      const int width = 30;
      const int filled = static_cast<int>(width * e.step() / std::max<int64_t>(1, e.total()));
      line = tty ? absl::StrCat(StateName(e.state()), " ", e.stage(), " [",
                                std::string(filled, '#'), std::string(width - filled, ' '), "] ",
                                e.step(), "/", e.total())
                 : absl::StrCat(StateName(e.state()), " ", e.stage());
    } else {
      line = absl::StrCat(StateName(e.state()), " ", e.stage());
    }
    if (tty) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
    } else if (line != last_line) {
      std::fprintf(stderr, "%s\n", line.c_str());  // one line per stage change
    }
    last_line = line;
  }
  if (tty) std::fprintf(stderr, "\n");
  grpc::Status s = reader->Finish();
  if (!s.ok()) return Fail("watch", s);
  std::printf("%s\n", StateName(last.state()));
  if (last.state() != v1::JOB_STATE_SUCCEEDED) {
    if (!last.error().empty()) std::fprintf(stderr, "error: %s\n", last.error().c_str());
    return 1;
  }
  return 0;
}

int RunFetch(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({{"out", true, "output .h5ad (required)", ""}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("fetch", "JOB --out R.h5ad", argv, specs, 1, &args, &r, &rc)) return rc;
  const std::string out = args.Get("out");
  if (out.empty()) return Fail("fetch", "--out is required");
  v1::FetchResultRequest req;
  req.set_id(args.positional()[0]);
  auto ctx = r.Ctx();
  auto reader = r.stub->FetchResult(ctx.get(), req);
  const std::string tmp = out + ".part";
  int64_t got = 0;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Fail("fetch", absl::StrCat("--out: cannot write ", tmp));
    v1::ResultChunk c;
    while (reader->Read(&c)) {
      f.write(c.data().data(), static_cast<std::streamsize>(c.data().size()));
      got += static_cast<int64_t>(c.data().size());
    }
    if (!f) return Fail("fetch", absl::StrCat("--out: write to ", tmp, " failed"));
  }
  grpc::Status s = reader->Finish();
  std::error_code ec;
  if (!s.ok()) {
    std::filesystem::remove(tmp, ec);
    return Fail("fetch", s);
  }
  std::filesystem::rename(tmp, out, ec);
  if (ec) return Fail("fetch", absl::StrCat("rename to ", out, ": ", ec.message()));
  std::fprintf(stderr, "wrote %s (%lld bytes)\n", out.c_str(), static_cast<long long>(got));
  return 0;
}

int RunCancel(const std::vector<std::string>& argv) {
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("cancel", "JOB", argv, WithCommon({}), 1, &args, &r, &rc)) return rc;
  v1::CancelJobRequest req;
  req.set_id(args.positional()[0]);
  v1::Job j;
  grpc::Status s = r.stub->CancelJob(r.Ctx().get(), req, &j);
  if (!s.ok()) return Fail("cancel", s);
  std::printf("%s %s\n", j.id().c_str(), StateName(j.state()));
  return 0;
}

}  // namespace

CANDIES_CLI_COMMAND(upload, "upload", "upload an .h5ad to candiesd; prints the dataset id", RunUpload);
CANDIES_CLI_COMMAND(submit, "submit", "submit a job to candiesd; prints the job id", RunSubmit);
CANDIES_CLI_COMMAND(list, "list", "list candiesd jobs (or --datasets)", RunList);
CANDIES_CLI_COMMAND(status, "status", "show one candiesd job", RunStatus);
CANDIES_CLI_COMMAND(watch, "watch", "follow a candiesd job until it ends", RunWatch);
CANDIES_CLI_COMMAND(fetch, "fetch", "download a finished job's result .h5ad", RunFetch);
CANDIES_CLI_COMMAND(cancel, "cancel", "cancel a queued or running candiesd job", RunCancel);

}  // namespace candies::cli
