// The gRPC service in-process (tests/server/service_fixture.h) with a backend
// that computes per-gene means of mod1 and writes them as the result .h5ad.
#include "service_fixture.h"

#include <cstdlib>
#include <zlib.h>

namespace candies::server::service_testing {
namespace {


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
  EXPECT_EQ(job.spec().kind(), v1::JOB_KIND_FULL);  // stored explicit

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
  // Where it ran: the scheduler's slot, here the service's one device (no device-slots).
  EXPECT_EQ(lresp.jobs(0).device(), "auto");
  EXPECT_EQ(job.device(), "");  // as submitted: not started yet

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
  req.set_kind(static_cast<v1::JobKind>(99));
  s = stub_->SubmitJob(Ctx().get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "kind: unknown value 99");
  req.set_kind(v1::JOB_KIND_UNSPECIFIED);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  req.set_kind_text("magic");  // an older client's text: the CLI's parser and words
  s = stub_->SubmitJob(Ctx().get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), ParseJobKind("magic").status().message());
  req.clear_kind_text();
#pragma GCC diagnostic pop
  req.set_kind(v1::JOB_KIND_FULL);
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
  s = stub_->RegisterDataset(Ctx("root").get(), rr, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  auto path = store_->GetDatasetFile(d.id());
  ASSERT_TRUE(path.ok());
  rr.set_path(*path);
  v1::Dataset reg;
  // A user may not register server files at all.
  EXPECT_EQ(stub_->RegisterDataset(Ctx().get(), rr, &reg).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  s = stub_->RegisterDataset(Ctx("root").get(), rr, &reg);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reg.n_obs(), 4);
  EXPECT_EQ(reg.n_vars(), 2);
}

AnnData Small(int n_obs) {
  AnnData a;
  std::vector<float> x;
  for (int i = 0; i < n_obs * 2; ++i) x.push_back(static_cast<float>(i));
  a.X = Matrix::Dense(n_obs, 2, x);
  for (int i = 0; i < n_obs; ++i) a.obs.index.push_back(absl::StrCat("s", i));
  a.var.index = {"g0", "g1"};
  return a;
}

// The registered file was checked at registration only and jobs read the path
// itself: swapping it for a symlink to a file outside the allowed dir made a
// job read that file. Now the checked bytes are copied (opened once, no
// symlinks followed) and jobs read the copy.
TEST_F(ServiceTest, RegisteredFileSwappedForASymlinkIsNotRead) {
  const fs::path allowed = fs::path(dir_) / "datasets" / "in";
  fs::create_directories(allowed);
  const fs::path file = allowed / "a.h5ad";
  const fs::path outside = fs::path(dir_) / "outside.h5ad";
  ASSERT_TRUE(WriteH5ad(Small(4), file.string()).ok());
  ASSERT_TRUE(WriteH5ad(Small(7), outside.string()).ok());
  v1::RegisterDatasetRequest rr;
  rr.set_path(file.string());
  v1::Dataset reg;
  grpc::Status s = stub_->RegisterDataset(Ctx("root").get(), rr, &reg);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reg.n_obs(), 4);
  EXPECT_EQ(reg.source(), file.string());

  fs::remove(file);
  fs::create_symlink(outside, file);
  auto path = store_->GetDatasetFile(reg.id());
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_NE(*path, file.string());
  auto a = ReadH5ad(*path);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->n_obs(), 4);  // the registered bytes, not the outside file's 7 rows

  // The symlink itself, a path through a symlinked directory and ".." are
  // refused with the one answer that does not say where links point.
  s = stub_->RegisterDataset(Ctx("root").get(), rr, &reg);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(s.error_message().find("outside"), std::string::npos) << s.error_message();
  fs::create_directory_symlink(fs::path(dir_), allowed / "up");
  rr.set_path((allowed / "up" / "outside.h5ad").string());
  s = stub_->RegisterDataset(Ctx("root").get(), rr, &reg);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  rr.set_path((allowed / ".." / ".." / "outside.h5ad").string());
  s = stub_->RegisterDataset(Ctx("root").get(), rr, &reg);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

// A file that crashes libhdf5 (SIGSEGV in H5T_copy) killed the daemon when
// registered. The parse now happens in the sandboxed validator.
TEST_F(ServiceTest, RegisteringACrashingFileLeavesTheDaemonUp) {
  const fs::path allowed = fs::path(dir_) / "datasets" / "in";
  fs::create_directories(allowed);
  const fs::path file = allowed / "flip.h5ad";
  const std::string cmd = absl::StrCat("gunzip -c '", CANDIES_SOURCE_DIR,
                                       "/tests/io/fuzz_regressions/flip_segv_h5t_copy.h5ad.gz' > '",
                                       file.string(), "'");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  v1::RegisterDatasetRequest rr;
  rr.set_path(file.string());
  v1::Dataset reg;
  grpc::Status s = stub_->RegisterDataset(Ctx("root").get(), rr, &reg);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("killed by signal 11"), std::string::npos) << s.error_message();
  EXPECT_EQ(s.error_message().rfind(file.string(), 0), 0u) << s.error_message();
  // Still serving, and nothing was stored.
  v1::ListDatasetsResponse list;
  s = stub_->ListDatasets(Ctx("root").get(), v1::ListDatasetsRequest(), &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(list.datasets_size(), 0);
}

// The stored file of an upload is validated in the sandbox; a refusal named
// the server-side path of that file (found by bench/chaos). It names "upload".
class TightValidationTest : public ServiceTest {
  void Configure(ServiceOptions& o) override { o.validation.read.max_elements = 2; }
};

TEST_F(TightValidationTest, ARefusedUploadDoesNotTellTheServerPath) {
  v1::Dataset d;
  grpc::Status s = Upload(5, 3, &d);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(s.error_message().rfind("upload", 0), 0u) << s.error_message();
  EXPECT_EQ(s.error_message().find(dir_), std::string::npos) << s.error_message();
  EXPECT_EQ(s.error_message().find(".h5ad"), std::string::npos) << s.error_message();
}

// The quota was checked when the stream began (stored bytes only) and again
// after the whole body was in memory: concurrent uploads could together pass
// it. Now the declared size is reserved at the header, atomically.
class QuotaTest : public ServiceTest {
  void Configure(ServiceOptions& o) override { o.max_dataset_bytes_per_owner = 5000; }
};

v1::UploadChunk DenseHeader(int n_obs, int n_vars) {
  v1::UploadChunk h;
  h.mutable_header()->set_n_obs(n_obs);
  h.mutable_header()->set_n_vars(n_vars);
  for (int i = 0; i < 2 * n_obs; ++i) h.mutable_header()->add_spatial(0);
  return h;
}

TEST_F(QuotaTest, ConcurrentUploadsCannotTogetherPassTheQuota) {
  // Stream A declares 30 x 30 float32 = 3600 bytes and stays open.
  auto actx = Ctx();
  v1::Dataset ad;
  auto a = stub_->UploadDataset(actx.get(), &ad);
  ASSERT_TRUE(a->Write(DenseHeader(30, 30)));
  // Stream B declares as much again: 7200 > 5000 while A holds its share. B
  // starts only once the server has read A's header (else B could reserve
  // first and A be the one refused).
  for (int i = 0; i < 1000 && service_->ReservedUploadBytes("alice") < 3600; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(service_->ReservedUploadBytes("alice"), 3600);
  std::string refusal;
  {
    auto bctx = Ctx();
    v1::Dataset bd;
    auto b = stub_->UploadDataset(bctx.get(), &bd);
    b->Write(DenseHeader(30, 30));
    b->WritesDone();
    grpc::Status s = b->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    refusal = s.error_message();
  }
  EXPECT_NE(refusal.find("owner alice: 0 stored + 3600 reserved by uploads in progress + 3600 new"),
            std::string::npos) << refusal;
  // A completes within the quota; its reservation is then released.
  v1::UploadChunk rows;
  for (int i = 0; i < 900; ++i) rows.mutable_rows()->add_values(1.0f);
  ASSERT_TRUE(a->Write(rows));
  a->WritesDone();
  grpc::Status s = a->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(service_->ReservedUploadBytes("alice"), 0);
  // bob has his own quota.
  v1::Dataset bobs;
  EXPECT_TRUE(Upload(4, 2, &bobs, -1, false, "bob").ok());
}

// Clients since 0.2 declare CHECKSUM_KIND_CRC32 and send zlib's CRC-32 of the
// values; the server checks it (required), and still takes the legacy FNV-1a
// (UploadSubmitWatchFetch) from older clients.
TEST_F(ServiceTest, Crc32ChecksumIsRequiredAndChecked) {
  auto upload = [&](int mode, v1::Dataset* out) {  // 0 right, 1 wrong, 2 missing
    auto ctx = Ctx();
    auto w = stub_->UploadDataset(ctx.get(), out);
    v1::UploadChunk h;
    h.mutable_header()->set_n_obs(3);
    h.mutable_header()->set_n_vars(2);
    h.mutable_header()->set_checksum(v1::CHECKSUM_KIND_CRC32);
    for (int i = 0; i < 6; ++i) h.mutable_header()->add_spatial(static_cast<float>(i));
    w->Write(h);
    uint32_t crc = static_cast<uint32_t>(crc32(0L, Z_NULL, 0));
    for (int i = 0; i < 3; ++i) {
      v1::UploadChunk c;
      c.mutable_rows()->add_values(static_cast<float>(i));
      c.mutable_rows()->add_values(0.5f * static_cast<float>(i));
      crc = static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(c.rows().values().data()),
                                        static_cast<uInt>(c.rows().values_size() * sizeof(float))));
      if (i == 2 && mode != 2) c.set_checksum_crc32(mode == 1 ? crc ^ 1u : crc);
      w->Write(c);
    }
    w->WritesDone();
    return w->Finish();
  };
  v1::Dataset d;
  grpc::Status s = upload(0, &d);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = upload(1, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(s.error_message().rfind("checksum_crc32: client sent", 0), 0u) << s.error_message();
  s = upload(2, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("checksum_crc32: missing"), std::string::npos) << s.error_message();
}

TEST_F(ServiceTest, CsrUploadWithObsColumns) {
  // 3 x 4 CSR in two blocks: rows {0: (1, 2.5)}, {1: empty}, {2: (0, 1), (3, 4)}.
  auto ctx = Ctx();
  v1::Dataset d;
  auto w = stub_->UploadDataset(ctx.get(), &d);
  v1::UploadChunk h;
  v1::DatasetHeader* hd = h.mutable_header();
  hd->set_n_obs(3);
  hd->set_n_vars(4);
  for (const char* n : {"s0", "s1", "s2"}) hd->add_obs_names(n);
  for (int i = 0; i < 6; ++i) hd->add_spatial(static_cast<float>(i));
  v1::ObsColumn* col = hd->add_obs_columns();
  col->set_name("domain");
  for (const char* v : {"b", "a", "b"}) col->add_values(v);
  ASSERT_TRUE(w->Write(h));
  v1::UploadChunk b1, b2;
  for (int64_t p : {0, 1, 1}) b1.mutable_csr()->add_indptr(p);
  b1.mutable_csr()->add_indices(1);
  b1.mutable_csr()->add_values(2.5f);
  for (int64_t p : {0, 2}) b2.mutable_csr()->add_indptr(p);
  for (int32_t j : {0, 3}) b2.mutable_csr()->add_indices(j);
  for (float v : {1.f, 4.f}) b2.mutable_csr()->add_values(v);
  uint64_t fnv = 14695981039346656037ull;
  for (const v1::CsrBlock* b : {&b1.csr(), &b2.csr()}) {
    fnv = Fnv1a64(b->values().data(), b->values_size() * sizeof(float), fnv);
    fnv = Fnv1a64(b->indices().data(), b->indices_size() * sizeof(int32_t), fnv);
  }
  b2.set_checksum_fnv1a64(fnv);
  ASSERT_TRUE(w->Write(b1));
  ASSERT_TRUE(w->Write(b2));
  w->WritesDone();
  grpc::Status s = w->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto path = store_->GetDatasetFile(d.id());
  ASSERT_TRUE(path.ok());
  auto a = ReadH5ad(*path);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->X.format, Matrix::Format::kCsr);  // stored sparse, as sent
  EXPECT_EQ(ToDense(a->X).values, (std::vector<float>{0, 2.5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 4}));
  const Column* domain = a->obs.Find("domain");
  ASSERT_NE(domain, nullptr);
  ASSERT_EQ(domain->kind, Column::Kind::kCategorical);
  std::vector<std::string> labels;
  for (int32_t c : domain->codes) labels.push_back(domain->categories[static_cast<size_t>(c)]);
  EXPECT_EQ(labels, (std::vector<std::string>{"b", "a", "b"}));

  // A column index out of range is named; so is a short obs column.
  auto ctx2 = Ctx();
  auto w2 = stub_->UploadDataset(ctx2.get(), &d);
  hd->mutable_obs_columns(0)->add_values("extra");
  ASSERT_TRUE(w2->Write(h));
  w2->WritesDone();
  s = w2->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("header.obs_columns[0].values"), std::string::npos) << s.error_message();
  hd->mutable_obs_columns(0)->mutable_values()->RemoveLast();
  auto ctx3 = Ctx();
  auto w3 = stub_->UploadDataset(ctx3.get(), &d);
  ASSERT_TRUE(w3->Write(h));
  b1.mutable_csr()->set_indices(0, 4);
  w3->Write(b1);
  w3->WritesDone();
  s = w3->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("csr.indices: column 4 outside [0, 4)"), std::string::npos)
      << s.error_message();
}

TEST_F(ServiceTest, TrainedModelsAndResultParts) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 3, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  req.set_save_model(true);
  v1::Job job;
  grpc::Status s = stub_->SubmitJob(Ctx().get(), req, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(job.model_id().empty());
  ASSERT_EQ(WaitJob(stub_.get(), job.id(), tokens_["alice"]), v1::JOB_STATE_SUCCEEDED);
  // The job's model is recorded and resident once the job reads SUCCEEDED.
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(Ctx().get(), v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).id(), job.model_id());
  EXPECT_EQ(models.models(0).source_job(), job.id());
  EXPECT_EQ(models.models(0).owner(), "alice");
  EXPECT_TRUE(models.models(0).resident());
  EXPECT_EQ(models.models(0).bytes(), 12);
  EXPECT_EQ(models.resident_bytes(), 12);
  EXPECT_EQ(MetricValue("candies_models_resident", {}), 1);
  EXPECT_EQ(MetricValue("candies_model_bytes_resident", {}), 12);

  // Applying it: the backend receives the resident model (means + 12).
  v1::SubmitJobRequest apply = req;
  apply.set_save_model(false);
  apply.set_model_id(job.model_id());
  v1::Job applied;
  s = stub_->SubmitJob(Ctx().get(), apply, &applied);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(WaitJob(stub_.get(), applied.id(), tokens_["alice"]), v1::JOB_STATE_SUCCEEDED);
  v1::FetchResultRequest fr;
  fr.set_id(applied.id());
  fr.set_part("X_candies");
  {
    auto fctx = Ctx();
    auto fetch = stub_->FetchResult(fctx.get(), fr);
    v1::ResultChunk c;
    ASSERT_TRUE(fetch->Read(&c));
    EXPECT_EQ(c.n_rows(), 1);
    EXPECT_EQ(c.n_cols(), 3);
    ASSERT_EQ(c.obs_names_size(), 1);
    // Column means of X[i][j] = i + 10 j over i < 4: 1.5 + 10 j, plus 12.
    EXPECT_EQ(std::vector<float>(c.values().begin(), c.values().end()),
              (std::vector<float>{13.5, 23.5, 33.5}));
    while (fetch->Read(&c)) {
    }
    ASSERT_TRUE(fetch->Finish().ok());
  }
  fr.set_part("candies_cluster");
  {
    auto fctx = Ctx();
    auto fetch = stub_->FetchResult(fctx.get(), fr);
    v1::ResultChunk c;
    ASSERT_TRUE(fetch->Read(&c));
    EXPECT_EQ(std::vector<int32_t>(c.labels().begin(), c.labels().end()), (std::vector<int32_t>{3}));
    while (fetch->Read(&c)) {
    }
    ASSERT_TRUE(fetch->Finish().ok());
  }
  for (const auto& [part, code] : std::vector<std::pair<std::string, grpc::StatusCode>>{
           {"X_candies_denoised", grpc::StatusCode::NOT_FOUND},
           {"denoised_matrix", grpc::StatusCode::NOT_FOUND},
           {"denoised_h5ad", grpc::StatusCode::NOT_FOUND},
           {"everything", grpc::StatusCode::INVALID_ARGUMENT}}) {
    fr.set_part(part);
    auto fctx = Ctx();
    auto fetch = stub_->FetchResult(fctx.get(), fr);
    v1::ResultChunk c;
    while (fetch->Read(&c)) {
    }
    s = fetch->Finish();
    EXPECT_EQ(s.error_code(), code) << part << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("part"), std::string::npos) << s.error_message();
  }

  // Bad model requests name the field.
  apply.set_model_id("model-nope");
  s = stub_->SubmitJob(Ctx().get(), apply, &applied);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("model_id"), std::string::npos) << s.error_message();
  apply.set_model_id(job.model_id());
  apply.set_kind(v1::JOB_KIND_INTEGRATE);
  s = stub_->SubmitJob(Ctx().get(), apply, &applied);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("model_id"), std::string::npos) << s.error_message();
  apply.set_kind(v1::JOB_KIND_FULL);
  apply.set_save_model(true);
  s = stub_->SubmitJob(Ctx().get(), apply, &applied);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("save_model"), std::string::npos) << s.error_message();

  // Pin, unload, delete.
  v1::PinModelRequest pr;
  pr.set_id(job.model_id());
  pr.set_pin(true);
  v1::Model m;
  ASSERT_TRUE(stub_->PinModel(Ctx("root").get(), pr, &m).ok());
  EXPECT_TRUE(m.pinned());
  v1::UnloadModelRequest ur;
  ur.set_id(job.model_id());
  ASSERT_TRUE(stub_->UnloadModel(Ctx("root").get(), ur, &m).ok());
  EXPECT_FALSE(m.resident());
  EXPECT_FALSE(m.pinned());
  EXPECT_EQ(MetricValue("candies_models_resident", {}), 0);
  v1::LoadModelRequest lr;
  lr.set_id(job.model_id());
  ASSERT_TRUE(stub_->LoadModel(Ctx("root").get(), lr, &m).ok());
  EXPECT_TRUE(m.resident());
  v1::DeleteModelRequest dr;
  dr.set_id(job.model_id());
  v1::DeleteModelResponse dresp;
  ASSERT_TRUE(stub_->DeleteModel(Ctx().get(), dr, &dresp).ok());
  EXPECT_EQ(stub_->DeleteModel(Ctx().get(), dr, &dresp).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::GetModelRequest gm;
  gm.set_id(job.model_id());
  EXPECT_EQ(stub_->GetModel(Ctx().get(), gm, &m).error_code(), grpc::StatusCode::NOT_FOUND);

  // Stage durations and RPC latencies were recorded.
  bool stage = false, rpc = false;
  for (const auto& family : metrics_.registry().Collect()) {
    for (const auto& metric : family.metric) {
      for (const auto& l : metric.label) {
        if (family.name == "candies_stage_duration_seconds" && l.value == "mean")
          stage = metric.histogram.sample_count >= 2;
        if (family.name == "candies_rpc_duration_seconds" && l.value == "SubmitJob")
          rpc = metric.histogram.sample_count >= 5;
      }
    }
  }
  EXPECT_TRUE(stage);
  EXPECT_TRUE(rpc);
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

// The gated backend of QueueServiceTest, a roomy queue, one queued job per owner.
class OwnerQuotaTest : public QueueServiceTest {
 protected:
  int max_queue() override { return 1000; }
  int max_queued_per_owner() override { return 1; }
};

TEST_F(OwnerQuotaTest, OneOwnerCannotFillTheQueue) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  v1::Job running, queued, rejected, bob;
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &running).ok());
  for (int i = 0; i < 400 && gate_.started() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(gate_.started(), 1);
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &queued).ok());
  grpc::Status s = stub_->SubmitJob(Ctx().get(), req, &rejected);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("max-queued-per-owner"), std::string::npos) << s.error_message();
  // Another owner still gets in.
  // bob may not use alice's dataset: his own.
  v1::Dataset bobs;
  ASSERT_TRUE(Upload(4, 2, &bobs, -1, false, "bob").ok());
  req.set_mod1_dataset(bobs.id());
  req.set_mod2_dataset(bobs.id());
  s = stub_->SubmitJob(Ctx("bob").get(), req, &bob);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(bob.owner(), "bob");
  for (const v1::Job* j : {&running, &queued, &bob}) {
    v1::CancelJobRequest cr;
    cr.set_id(j->id());
    v1::Job after;
    EXPECT_TRUE(stub_->CancelJob(Ctx(j->owner()).get(), cr, &after).ok());
  }
}

}  // namespace
}  // namespace candies::server::service_testing
