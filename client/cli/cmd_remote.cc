// Client commands for candiesd (proto/candies/v1/candies.proto): upload,
// submit, list, status, watch, fetch, cancel. Each takes --server ADDR and the
// credentials (docs/SECURITY.md): --token (else $CANDIES_TOKEN), sent as
// `authorization: Bearer`; --tls-ca to verify the server over TLS;
// --tls-cert/--tls-key for a client certificate (mTLS). --owner NAME is only
// honoured by a daemon in insecure-dev-mode. Ids go to stdout alone on a line
// so that scripts can capture them; everything else goes to stderr.
#include <grpcpp/grpcpp.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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
#include "client/cli/remote.h"
#include "core/io/h5ad.h"
#include "server/job_vocabulary.h"

namespace candies::cli {
namespace {

// Upload row blocks stay under this many bytes (gRPC's default receive limit
// is 4 MiB; the daemon allows 64 MiB).
constexpr int64_t kUploadBlockBytes = 2 << 20;

std::vector<FlagSpec> WithCommon(std::vector<FlagSpec> specs) {
  specs.push_back({"server", true, "candiesd address", "127.0.0.1:50051"});
  specs.push_back({"owner", true, "owner name (only a daemon in insecure-dev-mode honours it)", ""});
  specs.push_back({"token", true, "bearer token (default: $CANDIES_TOKEN)", ""});
  specs.push_back({"tls-ca", true, "PEM CA that signed the server certificate (turns TLS on)", ""});
  specs.push_back({"tls-cert", true, "PEM client certificate for mTLS (with --tls-key)", ""});
  specs.push_back({"tls-key", true, "PEM key of --tls-cert", ""});
  specs.push_back({"timeout", true, "seconds to wait for the server (0: no limit)", "60"});
  specs.push_back({"help", false, "show this help", ""});
  return specs;
}

struct Remote {
  std::unique_ptr<v1::Candies::Stub> stub;
  std::string owner, token;
  int64_t timeout_s = 60;
  std::unique_ptr<grpc::ClientContext> Ctx(bool bounded = true) const {
    auto c = std::make_unique<grpc::ClientContext>();
    if (bounded && timeout_s > 0) {
      c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    }
    if (!owner.empty()) c->AddMetadata("x-candies-owner", owner);
    if (!token.empty()) c->AddMetadata("authorization", "Bearer " + token);
    return c;
  }
};

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  if (s.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  return s;
}

// Plain text unless a TLS file is given; then TLS, verifying the server with
// --tls-ca (or the system roots), with a client certificate when given.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const RemoteConnection& c) {
  if (c.tls_ca.empty() && c.tls_cert.empty() && c.tls_key.empty()) {
    return grpc::CreateChannel(c.server, grpc::InsecureChannelCredentials());
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  grpc::SslCredentialsOptions opt;
  if (!c.tls_ca.empty()) {
    auto ca = ReadFile("--tls-ca", c.tls_ca);
    if (!ca.ok()) return ca.status();
    opt.pem_root_certs = *ca;
  }
  if (!c.tls_cert.empty()) {
    auto cert = ReadFile("--tls-cert", c.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile("--tls-key", c.tls_key);
    if (!key.ok()) return key.status();
    opt.pem_cert_chain = *cert;
    opt.pem_private_key = *key;
  }
  return grpc::CreateChannel(c.server, grpc::SslCredentials(opt));
}

// --token, else $CANDIES_TOKEN.
std::string TokenOf(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("CANDIES_TOKEN");
  return env == nullptr ? "" : env;
}

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

constexpr size_t kAnyPositional = static_cast<size_t>(-1);

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
  if (n_positional != kAnyPositional && parsed->positional().size() != n_positional) {
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
  RemoteConnection conn{args->Get("server"), args->Get("owner"), TokenOf(args->Get("token")),
                        args->Get("tls-ca"), args->Get("tls-cert"), args->Get("tls-key")};
  auto channel = MakeChannel(conn);
  if (!channel.ok()) {
    *rc = Fail(cmd, std::string(channel.status().message()));
    return false;
  }
  remote->stub = v1::Candies::NewStub(*channel);
  remote->owner = conn.owner;
  remote->token = conn.token;
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

// The modality vocabulary of a local run (core/util/job_options.h).
absl::StatusOr<v1::ModalityKind> ParseKind(const std::string& text) {
  absl::StatusOr<ModalityKind> kind = ParseModalityKind(text);
  if (!kind.ok()) return kind.status();
  return server::ToProto(*kind);
}

// One obs column as text (the upload's ObsColumn); floats are skipped (they
// are not domain labels).
bool ColumnAsText(const Column& c, std::vector<std::string>* out) {
  out->clear();
  switch (c.kind) {
    case Column::Kind::kCategorical:
      for (int32_t code : c.codes) out->push_back(code < 0 ? "" : c.categories[static_cast<size_t>(code)]);
      return true;
    case Column::Kind::kString: *out = c.strings; return true;
    case Column::Kind::kInt:
      for (int64_t v : c.ints) out->push_back(absl::StrCat(v));
      return true;
    case Column::Kind::kBool:
      for (uint8_t v : c.bools) out->push_back(v ? "True" : "False");
      return true;
    default: return false;
  }
}

// A gRPC status as an absl::Status (the codes are the same numbers).
absl::Status FromGrpc(const grpc::Status& s, const std::string& context = "") {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      context.empty() ? s.error_message() : absl::StrCat(context, s.error_message()));
}

// Streams `a` to UploadDataset: CSR blocks when X is sparse (it stays sparse on
// the wire and on the server), dense row blocks otherwise. Returns the id.
absl::StatusOr<v1::Dataset> UploadAnnData(const Remote& r, const AnnData& a, const std::string& name,
                                          v1::ModalityKind kind) {
  auto sp = a.obsm.find("spatial");
  if (sp == a.obsm.end() || sp->second.n_cols < 2) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": obsm[\"spatial\"] with 2 columns is required"));
  }
  const Matrix spatial = ToDense(sp->second);
  v1::UploadChunk head;
  v1::DatasetHeader* h = head.mutable_header();
  h->set_checksum(v1::CHECKSUM_KIND_CRC32);
  h->set_name(name);
  h->set_kind(kind);
  h->set_n_obs(a.X.n_rows);
  h->set_n_vars(a.X.n_cols);
  for (const auto& n : a.obs.index) h->add_obs_names(n);
  for (const auto& n : a.var.index) h->add_var_names(n);
  for (int64_t i = 0; i < spatial.n_rows; ++i) {
    h->add_spatial(spatial.values[i * spatial.n_cols]);
    h->add_spatial(spatial.values[i * spatial.n_cols + 1]);
  }
  std::vector<std::string> text;
  for (const Column& c : a.obs.columns) {
    if (!ColumnAsText(c, &text)) continue;
    v1::ObsColumn* oc = h->add_obs_columns();
    oc->set_name(c.name);
    for (auto& t : text) oc->add_values(std::move(t));
  }
  v1::Dataset out;
  auto ctx = r.Ctx(/*bounded=*/false);
  auto w = r.stub->UploadDataset(ctx.get(), &out);
  bool ok = w->Write(head);
  uint32_t crc = 0;
  auto hash = [&crc](const void* data, size_t n) {
    crc = static_cast<uint32_t>(crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(n)));
  };
  const bool sparse = a.X.format != Matrix::Format::kDense;
  if (sparse) {
    const Matrix x = ToCsr(a.X);
    const int64_t n_rows = x.n_rows;
    int64_t i = 0;
    while (ok && i < n_rows) {
      // Rows until the block holds about kUploadBlockBytes of values + indices.
      int64_t end = i + 1;
      while (end < n_rows && (x.indptr[end + 1] - x.indptr[i]) * 8 < kUploadBlockBytes) ++end;
      v1::UploadChunk c;
      v1::CsrBlock* b = c.mutable_csr();
      const int64_t base = x.indptr[i];
      for (int64_t k = i; k <= end; ++k) b->add_indptr(x.indptr[k] - base);
      b->mutable_indices()->Add(x.indices.begin() + base, x.indices.begin() + x.indptr[end]);
      b->mutable_values()->Add(x.values.begin() + base, x.values.begin() + x.indptr[end]);
      hash(b->values().data(), b->values_size() * sizeof(float));
      hash(b->indices().data(), b->indices_size() * sizeof(int32_t));
      if (end == n_rows) c.set_checksum_crc32(crc);
      ok = w->Write(c);
      i = end;
    }
  } else {
    const Matrix& x = a.X;
    const int64_t rows_per_block =
        std::max<int64_t>(1, kUploadBlockBytes / 4 / std::max<int64_t>(1, x.n_cols));
    for (int64_t i = 0; ok && i < x.n_rows; i += rows_per_block) {
      const int64_t end = std::min(x.n_rows, i + rows_per_block);
      v1::UploadChunk c;
      c.mutable_rows()->mutable_values()->Add(x.values.begin() + i * x.n_cols,
                                              x.values.begin() + end * x.n_cols);
      hash(c.rows().values().data(), c.rows().values_size() * sizeof(float));
      if (end == x.n_rows) c.set_checksum_crc32(crc);
      ok = w->Write(c);
    }
  }
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) return FromGrpc(s, absl::StrCat("upload ", name, ": "));
  return out;
}

int RunUpload(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({{"name", true, "dataset name (default: the file name)", ""},
                                 {"kind", true, "rna | protein | atac", "rna"}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("upload", "FILE.h5ad", argv, specs, 1, &args, &r, &rc)) return rc;
  const std::string path = args.positional()[0];
  auto kind = ParseKind(args.Get("kind"));
  if (!kind.ok()) return Fail("upload", absl::StrCat("--kind: ", kind.status().message()));
  auto a = ReadH5ad(path);
  if (!a.ok()) return Fail("upload", std::string(a.status().message()));
  const std::string name = args.Get("name").empty()
                               ? std::filesystem::path(path).filename().string()
                               : args.Get("name");
  auto out = UploadAnnData(r, *a, name, *kind);
  if (!out.ok()) return Fail("upload", std::string(out.status().message()));
  std::fprintf(stderr, "uploaded %s: %lld x %lld (%s)\n", path.c_str(),
               static_cast<long long>(out->n_obs()), static_cast<long long>(out->n_vars()),
               out->name().c_str());
  std::printf("%s\n", out->id().c_str());
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
                                 {"deadline-seconds", true, "0: none", "0"},
                                 {"cluster-method", true, "mclust | leiden | kmeans (default: the preset's)", ""},
                                 {"model", true, "apply this trained model (candies models) instead of training", ""},
                                 {"save-model", false, "keep the trained model on the server (prints its id)", ""}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("submit", "--mod1 ID --mod2 ID --n-clusters K", argv, specs, 0, &args, &r, &rc)) return rc;
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(args.Get("mod1"));
  req.set_mod2_dataset(args.Get("mod2"));
  req.set_labels_key(args.Get("labels-key"));
  req.set_model_id(args.Get("model"));
  req.set_save_model(args.Has("save-model"));
  JobSettingsText text;
  text.kind = args.Get("kind");
  text.low_quality = args.Get("low-quality");
  text.preset = args.Get("preset");
  text.cluster_method = args.Get("cluster-method");
  text.apply_model = !req.model_id().empty();
  text.save_model = req.save_model();
  for (const char* f : {"n-clusters", "seed", "priority", "deadline-seconds"}) {
    auto v = args.GetInt(f);
    if (!v.ok()) return Fail("submit", std::string(v.status().message()));
    if (std::string(f) == "n-clusters") text.n_clusters = *v;
    if (std::string(f) == "seed") req.set_seed(static_cast<uint64_t>(*v));
    if (std::string(f) == "priority") req.set_priority(static_cast<int32_t>(*v));
    if (std::string(f) == "deadline-seconds") req.set_deadline_seconds(*v);
  }
  // Parsed and checked as a local run and the daemon do (core/util/job_options.h).
  auto settings = ParseJobSettings(text);
  if (!settings.ok()) return Fail("submit", std::string(settings.status().message()));
  server::SetRequestSettings(*settings, &req);
  v1::Job job;
  grpc::Status s = r.stub->SubmitJob(r.Ctx().get(), req, &job);
  if (!s.ok()) return Fail("submit", s);
  std::fprintf(stderr, "submitted %s (queue position %d)\n", job.id().c_str(), job.queue_position());
  if (!job.model_id().empty()) std::fprintf(stderr, "the trained model will be %s\n", job.model_id().c_str());
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
      std::printf("%s %s %s %s %s\n", j.id().c_str(), StateName(j.state()), server::KindName(j.spec()),
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
              j.id().c_str(), StateName(j.state()), server::KindName(j.spec()), j.owner().c_str(),
              j.attempt(), j.queue_position(), j.stage().c_str(), j.error().c_str());
  return 0;
}

// Follows a job until it ends, drawing progress on stderr (a bar on a
// terminal, one line per stage otherwise). Returns the last event.
absl::StatusOr<v1::JobEvent> Follow(const Remote& r, const std::string& id) {
  v1::WatchJobRequest req;
  req.set_id(id);
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
                                e.step(), "/", e.total(), " loss ", absl::SixDigits(e.loss()),
                                e.eta_seconds() >= 0 ? absl::StrCat(" ETA ", static_cast<int64_t>(e.eta_seconds()), "s") : "")
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
  if (!s.ok()) {
    return FromGrpc(s);
  }
  return last;
}

int RunWatch(const std::vector<std::string>& argv) {
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("watch", "JOB", argv, WithCommon({}), 1, &args, &r, &rc)) return rc;
  auto last = Follow(r, args.positional()[0]);
  if (!last.ok()) return Fail("watch", std::string(last.status().message()));
  std::printf("%s\n", StateName(last->state()));
  if (last->state() != v1::JOB_STATE_SUCCEEDED) {
    if (!last->error().empty()) std::fprintf(stderr, "error: %s\n", last->error().c_str());
    return 1;
  }
  return 0;
}

// Downloads a file part ("h5ad" | "denoised_h5ad") of a job's result to `out`
// (via out.part + rename: an interrupted fetch leaves no truncated file).
absl::StatusOr<int64_t> FetchToFile(const Remote& r, const std::string& id, const std::string& part,
                                    const std::string& out) {
  v1::FetchResultRequest req;
  req.set_id(id);
  req.set_part(part);
  auto ctx = r.Ctx(/*bounded=*/false);
  auto reader = r.stub->FetchResult(ctx.get(), req);
  const std::string tmp = out + ".part";
  int64_t got = 0;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return absl::InvalidArgumentError(absl::StrCat("--out: cannot write ", tmp));
    v1::ResultChunk c;
    while (reader->Read(&c)) {
      f.write(c.data().data(), static_cast<std::streamsize>(c.data().size()));
      got += static_cast<int64_t>(c.data().size());
    }
    if (!f) return absl::DataLossError(absl::StrCat("--out: write to ", tmp, " failed"));
  }
  grpc::Status s = reader->Finish();
  std::error_code ec;
  if (!s.ok()) {
    std::filesystem::remove(tmp, ec);
    return FromGrpc(s);
  }
  std::filesystem::rename(tmp, out, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename to ", out, ": ", ec.message()));
  return got;
}

int RunFetch(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({{"out", true, "output file (required)", ""},
                                 {"part", true, "h5ad | denoised_h5ad (the denoised matrix as .h5ad) | report (the job's HTML report)", "h5ad"}});
  Args args;
  Remote r;
  int rc = 0;
  if (!Setup("fetch", "JOB --out R.h5ad", argv, specs, 1, &args, &r, &rc)) return rc;
  const std::string out = args.Get("out");
  if (out.empty()) return Fail("fetch", "--out is required");
  auto got = FetchToFile(r, args.positional()[0], args.Get("part"), out);
  if (!got.ok()) return Fail("fetch", std::string(got.status().message()));
  std::fprintf(stderr, "wrote %s (%lld bytes)\n", out.c_str(), static_cast<long long>(*got));
  return 0;
}

std::string Bytes(int64_t b) {
  if (b >= (int64_t{1} << 30)) return absl::StrCat(absl::SixDigits(b / 1073741824.0), " GiB");
  if (b >= (int64_t{1} << 20)) return absl::StrCat(absl::SixDigits(b / 1048576.0), " MiB");
  return absl::StrCat(b, " B");
}

void PrintModel(const v1::Model& m) {
  std::printf("%s %s %s%s %s low=%s(%s) high=%s %s %s\n", m.id().c_str(),
              m.resident() ? "resident" : "on-disk", m.pinned() ? "pinned" : "-",
              m.shared() ? " shared" : "",
              Bytes(m.bytes()).c_str(), m.low_quality().c_str(), m.low_kind().c_str(),
              m.high_kind().c_str(), m.owner().c_str(), Age(m.created_unix()).c_str());
}

int RunModels(const std::vector<std::string>& argv) {
  const auto specs = WithCommon({});
  Args args;
  Remote r;
  int rc = 0;
  auto usage = [&]() {
    std::fputs(Args::Usage("models", "[list | get ID | load ID | unload ID | pin ID | unpin ID | publish ID | unpublish ID | delete ID]",
                           specs).c_str(), stderr);
  };
  if (!Setup("models", "[list | get ID | load ID | unload ID | pin ID | unpin ID | publish ID | unpublish ID | delete ID]", argv,
             specs, kAnyPositional, &args, &r, &rc)) return rc;
  const auto& pos = args.positional();
  const std::string action = pos.empty() ? "list" : pos[0];
  if (action == "list") {
    if (pos.size() > 1) { usage(); return 1; }
    v1::ListModelsResponse resp;
    grpc::Status s = r.stub->ListModels(r.Ctx().get(), v1::ListModelsRequest(), &resp);
    if (!s.ok()) return Fail("models", s);
    for (const auto& m : resp.models()) PrintModel(m);
    std::fprintf(stderr, "resident %s of budget %s\n", Bytes(resp.resident_bytes()).c_str(),
                 Bytes(resp.budget_bytes()).c_str());
    return 0;
  }
  if (pos.size() != 2) { usage(); return 1; }
  const std::string& id = pos[1];
  grpc::Status s;
  v1::Model m;
  if (action == "get") {
    v1::GetModelRequest q; q.set_id(id);
    s = r.stub->GetModel(r.Ctx().get(), q, &m);
  } else if (action == "load") {
    v1::LoadModelRequest q; q.set_id(id);
    s = r.stub->LoadModel(r.Ctx().get(), q, &m);
  } else if (action == "unload") {
    v1::UnloadModelRequest q; q.set_id(id);
    s = r.stub->UnloadModel(r.Ctx().get(), q, &m);
  } else if (action == "pin" || action == "unpin") {
    v1::PinModelRequest q; q.set_id(id); q.set_pin(action == "pin");
    s = r.stub->PinModel(r.Ctx().get(), q, &m);
  } else if (action == "publish" || action == "unpublish") {
    v1::PublishModelRequest q; q.set_id(id); q.set_shared(action == "publish");
    s = r.stub->PublishModel(r.Ctx().get(), q, &m);
  } else if (action == "delete") {
    v1::DeleteModelRequest q; q.set_id(id);
    v1::DeleteModelResponse resp;
    s = r.stub->DeleteModel(r.Ctx().get(), q, &resp);
    if (!s.ok()) return Fail("models", s);
    std::printf("%s deleted\n", id.c_str());
    return 0;
  } else {
    usage();
    return 1;
  }
  if (!s.ok()) return Fail("models", s);
  PrintModel(m);
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

int RunOnServer(const RemoteRun& run) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "candies run: %s\n", msg.c_str());
    return 1;
  };
  Remote r;
  RemoteConnection conn = run.connection;
  conn.token = TokenOf(conn.token);
  auto channel = MakeChannel(conn);
  if (!channel.ok()) return fail(std::string(channel.status().message()));
  r.stub = v1::Candies::NewStub(*channel);
  r.owner = conn.owner;
  r.token = conn.token;
  r.timeout_s = 0;  // a job may run for hours; the server's deadlines apply
  std::string ids[2];
  const std::shared_ptr<const AnnData>* mods[2] = {&run.mod1, &run.mod2};
  const std::string* names[2] = {&run.mod1_name, &run.mod2_name};
  const ModalityKind kinds[2] = {run.settings.mod1_kind, run.settings.mod2_kind};
  for (int m = 0; m < 2; ++m) {
    auto d = UploadAnnData(r, **mods[m], *names[m], server::ToProto(kinds[m]));
    if (!d.ok()) return fail(std::string(d.status().message()));
    std::fprintf(stderr, "[upload] mod%d %s: %lld x %lld -> %s\n", m + 1, names[m]->c_str(),
                 static_cast<long long>(d->n_obs()), static_cast<long long>(d->n_vars()),
                 d->id().c_str());
    ids[m] = d->id();
  }
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(ids[0]);
  req.set_mod2_dataset(ids[1]);
  server::SetRequestSettings(run.settings, &req);
  req.set_seed(run.seed);
  req.set_labels_key(run.labels_key);
  req.set_model_id(run.load_model);
  req.set_save_model(run.save_model);
  v1::Job job;
  grpc::Status s = r.stub->SubmitJob(r.Ctx().get(), req, &job);
  if (!s.ok()) return fail(absl::StrCat(s.error_message(), " (code ", static_cast<int>(s.error_code()), ")"));
  std::fprintf(stderr, "[submit] %s on %s (queue position %d)\n", job.id().c_str(),
               run.connection.server.c_str(), job.queue_position());
  auto last = Follow(r, job.id());
  if (!last.ok()) return fail(absl::StrCat("watch ", job.id(), ": ", last.status().message()));
  if (last->state() != v1::JOB_STATE_SUCCEEDED) {
    return fail(absl::StrCat("job ", job.id(), " ended ", StateName(last->state()), ": ", last->error()));
  }
  auto got = FetchToFile(r, job.id(), "h5ad", run.out);
  if (!got.ok()) return fail(absl::StrCat("fetch ", job.id(), ": ", got.status().message()));
  if (!run.out_denoised.empty()) {
    auto d = FetchToFile(r, job.id(), "denoised_h5ad", run.out_denoised);
    if (!d.ok()) return fail(absl::StrCat("--out-denoised: ", d.status().message()));
    std::printf("wrote %s (denoised)\n", run.out_denoised.c_str());
  }
  if (!job.model_id().empty()) std::printf("saved model %s on %s\n", job.model_id().c_str(), run.connection.server.c_str());
  // Print what local `candies run` prints, from the result's uns["candies"].
  auto result = ReadH5ad(run.out);
  if (!result.ok()) return fail(std::string(result.status().message()));
  const UnsValue* c = result->uns.Find("candies");
  if (c != nullptr) {
    if (const UnsValue* lq = c->Find("low_quality"); lq != nullptr) {
      std::printf("low-quality modality: %s\n", lq->str.c_str());
    }
    if (const UnsValue* m = c->Find("metrics"); m != nullptr) {
      for (const auto& [name, v] : m->children) std::printf("%s\t%.4f\n", name.c_str(), v.f);
    }
    if (const UnsValue* sec = c->Find("seconds"); sec != nullptr) {
      for (const auto& [name, v] : sec->children) std::fprintf(stderr, "seconds %-12s %.2f\n", name.c_str(), v.f);
    }
  }
  std::printf("job %s\nwrote %s\n", job.id().c_str(), run.out.c_str());
  return 0;
}

CANDIES_CLI_COMMAND(upload, "upload", "upload an .h5ad to candiesd; prints the dataset id", RunUpload);
CANDIES_CLI_COMMAND(submit, "submit", "submit a job to candiesd; prints the job id", RunSubmit);
CANDIES_CLI_COMMAND(list, "list", "list candiesd jobs (or --datasets)", RunList);
CANDIES_CLI_COMMAND(status, "status", "show one candiesd job", RunStatus);
CANDIES_CLI_COMMAND(watch, "watch", "follow a candiesd job until it ends", RunWatch);
CANDIES_CLI_COMMAND(fetch, "fetch", "download a finished job's result .h5ad", RunFetch);
CANDIES_CLI_COMMAND(cancel, "cancel", "cancel a queued or running candiesd job", RunCancel);
CANDIES_CLI_COMMAND(models, "models", "list, load, unload, pin, publish or delete trained models on candiesd", RunModels);

}  // namespace candies::cli
