// Regression tests for the identity and isolation findings of issue 14: every
// call authenticated, users isolated (others' objects are NOT_FOUND exactly
// like missing ones), role limits, stream limits, file modes, escaped logs
// and audit lines, token revocation without restart, old-store migration.
#include <sqlite3.h>
#include <sys/stat.h>

#include <climits>
#include <thread>

#include "server/config.h"
#include "server/log.h"
#include "service_fixture.h"

namespace candies::server::service_testing {
namespace {

int ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

TEST_F(ServiceTest, EveryCallNeedsACredential) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::ListDatasetsResponse list;
  // None, a wrong token, another scheme, and the old client-chosen owner.
  std::vector<std::unique_ptr<grpc::ClientContext>> refused;
  refused.push_back(Ctx(""));
  refused.push_back(Ctx(""));
  refused.back()->AddMetadata("authorization", "Bearer cnd_0000");
  refused.push_back(Ctx(""));
  refused.back()->AddMetadata("authorization", "Basic " + tokens_["alice"]);
  refused.push_back(Ctx(""));
  refused.back()->AddMetadata("x-candies-owner", "alice");
  for (auto& ctx : refused) {
    grpc::Status s = stub_->ListDatasets(ctx.get(), v1::ListDatasetsRequest(), &list);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  }
  EXPECT_EQ(list.datasets_size(), 0);
  v1::GetDatasetRequest g;
  g.set_id(d.id());
  v1::Dataset got;
  EXPECT_EQ(stub_->GetDataset(Ctx("").get(), g, &got).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  v1::Job job;
  EXPECT_EQ(stub_->SubmitJob(Ctx("").get(), req, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::DeleteDatasetResponse dr;
  v1::DeleteDatasetRequest del;
  del.set_id(d.id());
  EXPECT_EQ(stub_->DeleteDataset(Ctx("").get(), del, &dr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stub_->GetDataset(Ctx().get(), g, &got).ok());  // still there
  EXPECT_EQ(store_->ListJobs().size(), 0u);
}

// alice's objects, seen from bob ("mallory"): every read and every action is
// NOT_FOUND with the message of a missing id; root (admin) sees them all.
TEST_F(ServiceTest, UsersSeeAndTouchOnlyTheirOwnObjects) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  req.set_save_model(true);
  v1::Job job;
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &job).ok());
  ASSERT_EQ(WaitJob(stub_.get(), job.id(), tokens_["alice"]), v1::JOB_STATE_SUCCEEDED);
  const std::string model = job.model_id();
  ASSERT_FALSE(model.empty());

  auto expect_hidden = [](const grpc::Status& s, const std::string& kind, const std::string& id) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_EQ(s.error_message(), kind + " " + id + " not found");
  };
  // The answer for a truly missing id, for comparison.
  v1::GetDatasetRequest gd;
  gd.set_id("ds-0000000000000000");
  v1::Dataset dout;
  expect_hidden(stub_->GetDataset(Ctx("bob").get(), gd, &dout), "dataset", gd.id());
  gd.set_id(d.id());
  expect_hidden(stub_->GetDataset(Ctx("bob").get(), gd, &dout), "dataset", d.id());
  v1::GetJobRequest gj;
  gj.set_id(job.id());
  v1::Job jout;
  expect_hidden(stub_->GetJob(Ctx("bob").get(), gj, &jout), "job", job.id());
  v1::CancelJobRequest cj;
  cj.set_id(job.id());
  expect_hidden(stub_->CancelJob(Ctx("bob").get(), cj, &jout), "job", job.id());
  {
    v1::WatchJobRequest w;
    w.set_id(job.id());
    auto ctx = Ctx("bob");
    auto reader = stub_->WatchJob(ctx.get(), w);
    v1::JobEvent e;
    EXPECT_FALSE(reader->Read(&e));
    expect_hidden(reader->Finish(), "job", job.id());
  }
  {
    v1::FetchResultRequest f;
    f.set_id(job.id());
    auto ctx = Ctx("bob");
    auto reader = stub_->FetchResult(ctx.get(), f);
    v1::ResultChunk c;
    EXPECT_FALSE(reader->Read(&c));
    expect_hidden(reader->Finish(), "job", job.id());
  }
  v1::Model mout;
  v1::GetModelRequest gm;
  gm.set_id(model);
  expect_hidden(stub_->GetModel(Ctx("bob").get(), gm, &mout), "model", model);
  v1::PinModelRequest pm;
  pm.set_id(model);
  pm.set_pin(true);
  expect_hidden(stub_->PinModel(Ctx("bob").get(), pm, &mout), "model", model);
  v1::UnloadModelRequest um;
  um.set_id(model);
  expect_hidden(stub_->UnloadModel(Ctx("bob").get(), um, &mout), "model", model);
  v1::LoadModelRequest lm;
  lm.set_id(model);
  expect_hidden(stub_->LoadModel(Ctx("bob").get(), lm, &mout), "model", model);
  v1::PublishModelRequest pub;
  pub.set_id(model);
  pub.set_shared(true);
  expect_hidden(stub_->PublishModel(Ctx("bob").get(), pub, &mout), "model", model);
  v1::DeleteModelRequest dm;
  dm.set_id(model);
  v1::DeleteModelResponse dmr;
  expect_hidden(stub_->DeleteModel(Ctx("bob").get(), dm, &dmr), "model", model);
  v1::DeleteDatasetRequest dd;
  dd.set_id(d.id());
  v1::DeleteDatasetResponse ddr;
  expect_hidden(stub_->DeleteDataset(Ctx("bob").get(), dd, &ddr), "dataset", d.id());
  // Jobs on alice's dataset or with alice's model.
  v1::Dataset bobs;
  ASSERT_TRUE(Upload(4, 2, &bobs, -1, false, "bob").ok());
  v1::SubmitJobRequest steal = req;
  steal.set_save_model(false);
  grpc::Status s = stub_->SubmitJob(Ctx("bob").get(), steal, &jout);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  steal.set_mod1_dataset(bobs.id());
  steal.set_mod2_dataset(bobs.id());
  steal.set_model_id(model);
  s = stub_->SubmitJob(Ctx("bob").get(), steal, &jout);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  // Lists are filtered.
  v1::ListDatasetsResponse ld;
  ASSERT_TRUE(stub_->ListDatasets(Ctx("bob").get(), v1::ListDatasetsRequest(), &ld).ok());
  ASSERT_EQ(ld.datasets_size(), 1);
  EXPECT_EQ(ld.datasets(0).id(), bobs.id());
  v1::ListJobsResponse lj;
  ASSERT_TRUE(stub_->ListJobs(Ctx("bob").get(), v1::ListJobsRequest(), &lj).ok());
  EXPECT_EQ(lj.jobs_size(), 0);
  v1::ListModelsResponse lmr;
  ASSERT_TRUE(stub_->ListModels(Ctx("bob").get(), v1::ListModelsRequest(), &lmr).ok());
  EXPECT_EQ(lmr.models_size(), 0);
  // Nothing of alice's changed; the admin sees everything.
  ASSERT_TRUE(stub_->GetDataset(Ctx().get(), gd, &dout).ok());
  ASSERT_TRUE(stub_->GetJob(Ctx().get(), gj, &jout).ok());
  EXPECT_EQ(jout.state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(stub_->ListDatasets(Ctx("root").get(), v1::ListDatasetsRequest(), &ld).ok());
  EXPECT_EQ(ld.datasets_size(), 2);
  ASSERT_TRUE(stub_->GetJob(Ctx("root").get(), gj, &jout).ok());
  ASSERT_TRUE(stub_->GetModel(Ctx("root").get(), gm, &mout).ok());
  EXPECT_EQ(mout.owner(), "alice");

  // Published: bob sees and applies the model, but cannot manage it.
  ASSERT_TRUE(stub_->PublishModel(Ctx().get(), pub, &mout).ok());
  EXPECT_TRUE(mout.shared());
  lmr.Clear();
  ASSERT_TRUE(stub_->ListModels(Ctx("bob").get(), v1::ListModelsRequest(), &lmr).ok());
  ASSERT_EQ(lmr.models_size(), 1);
  EXPECT_TRUE(lmr.models(0).shared());
  ASSERT_TRUE(stub_->SubmitJob(Ctx("bob").get(), steal, &jout).ok());
  EXPECT_EQ(jout.owner(), "bob");
  EXPECT_EQ(WaitJob(stub_.get(), jout.id(), tokens_["bob"]), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(stub_->DeleteModel(Ctx("bob").get(), dm, &dmr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub_->PublishModel(Ctx("bob").get(), pub, &mout).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub_->PinModel(Ctx("bob").get(), pm, &mout).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Pinning is for admins, even for the owner.
  EXPECT_EQ(stub_->PinModel(Ctx().get(), pm, &mout).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(stub_->PinModel(Ctx("root").get(), pm, &mout).ok());
  EXPECT_TRUE(stub_->DeleteModel(Ctx().get(), dm, &dmr).ok());  // the owner may
}

TEST_F(ServiceTest, PriorityCapAndDeadlineBound) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  req.set_priority(INT32_MAX);
  v1::Job job;
  grpc::Status s = stub_->SubmitJob(Ctx().get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("priority"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("max-user-priority"), std::string::npos) << s.error_message();
  req.set_priority(0);
  req.set_deadline_seconds(INT64_MAX);
  for (const char* who : {"alice", "root"}) {
    s = stub_->SubmitJob(Ctx(who).get(), req, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("deadline_seconds"), std::string::npos) << s.error_message();
    EXPECT_NE(s.error_message().find("max-deadline-seconds"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(store_->ListJobs().size(), 0u);
  // An admin may raise the priority; a bounded deadline is taken and does not
  // end the job at once.
  req.set_priority(INT32_MAX);
  req.set_deadline_seconds(3600);
  s = stub_->SubmitJob(Ctx("root").get(), req, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(WaitJob(stub_.get(), job.id(), tokens_["root"]), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(ServiceTest, RevokedTokenIsRefusedWithoutRestart) {
  v1::ListDatasetsResponse list;
  ASSERT_TRUE(stub_->ListDatasets(Ctx().get(), v1::ListDatasetsRequest(), &list).ok());
  auto entries = ReadTokenFile(token_file_);
  ASSERT_TRUE(entries.ok()) << entries.status();
  for (TokenEntry& e : *entries) e.revoked = e.revoked || e.name == "alice";
  ASSERT_TRUE(WriteTokenFile(token_file_, *entries).ok());
  EXPECT_EQ(ModeOf(token_file_), 0600);
  EXPECT_EQ(stub_->ListDatasets(Ctx().get(), v1::ListDatasetsRequest(), &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stub_->ListDatasets(Ctx("bob").get(), v1::ListDatasetsRequest(), &list).ok());
}

// The gated backend keeps a job running, so WatchJob streams stay open.
class StreamLimitTest : public ServiceTest {
 protected:
  JobBackend* backend() override { return &gate_; }
  void Configure(ServiceOptions& o) override {
    o.max_streams = 3;
    o.max_streams_per_user = 2;
  }
  GateBackend gate_;
};

TEST_F(StreamLimitTest, StreamsPerUserAndInTotal) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  v1::Job job;
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &job).ok());
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader;
  };
  v1::WatchJobRequest w;
  w.set_id(job.id());
  // Opens a stream as `who`; true when it delivered an event (it is open).
  auto open = [&](const std::string& who, std::vector<Stream>* keep) {
    Stream st{Ctx(who), nullptr};
    st.reader = stub_->WatchJob(st.ctx.get(), w);
    v1::JobEvent e;
    const bool ok = st.reader->Read(&e);
    if (!ok) {
      grpc::Status s = st.reader->Finish();
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      return false;
    }
    keep->push_back(std::move(st));
    return true;
  };
  std::vector<Stream> open_streams;
  // root sees alice's job too (admin).
  EXPECT_TRUE(open("alice", &open_streams));
  EXPECT_TRUE(open("alice", &open_streams));
  EXPECT_FALSE(open("alice", &open_streams));  // max-streams-per-user = 2
  EXPECT_TRUE(open("root", &open_streams));
  EXPECT_FALSE(open("root", &open_streams));  // max-streams = 3
  // Cancel the job: the streams end, and their slots come back.
  v1::CancelJobRequest cr;
  cr.set_id(job.id());
  v1::Job after;
  ASSERT_TRUE(stub_->CancelJob(Ctx().get(), cr, &after).ok());
  for (Stream& st : open_streams) {
    v1::JobEvent e;
    while (st.reader->Read(&e)) {
    }
    EXPECT_TRUE(st.reader->Finish().ok());
  }
  std::vector<Stream> again;
  EXPECT_TRUE(open("alice", &again));  // the final event, then the end
}

TEST_F(ServiceTest, DataFilesAre0600InA0700Dir) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::SubmitJobRequest req;
  req.set_mod1_dataset(d.id());
  req.set_mod2_dataset(d.id());
  req.set_n_clusters(2);
  v1::Job job;
  ASSERT_TRUE(stub_->SubmitJob(Ctx().get(), req, &job).ok());
  ASSERT_EQ(WaitJob(stub_.get(), job.id(), tokens_["alice"]), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ModeOf(dir_), 0700);
  EXPECT_EQ(ModeOf(dir_ + "/datasets"), 0700);
  EXPECT_EQ(ModeOf(dir_ + "/results"), 0700);
  EXPECT_EQ(ModeOf(dir_ + "/candies.db"), 0600);
  EXPECT_EQ(ModeOf(store_->DatasetPath(d.id())), 0600);
  EXPECT_EQ(ModeOf(store_->ResultPath(job.id())), 0600);
}

TEST(StoreModes, OpenTightensAnExistingDataDir) {
  const std::string dir = (fs::path(::testing::TempDir()) / "candies_modes_test").string();
  fs::remove_all(dir);
  fs::create_directories(dir + "/results");
  std::ofstream(dir + "/results/old.h5ad") << "x";
  ::chmod(dir.c_str(), 0755);
  ::chmod((dir + "/results").c_str(), 0755);
  ::chmod((dir + "/results/old.h5ad").c_str(), 0644);
  auto store = Store::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(ModeOf(dir), 0700);
  EXPECT_EQ(ModeOf(dir + "/results"), 0700);
  EXPECT_EQ(ModeOf(dir + "/results/old.h5ad"), 0600);
  EXPECT_EQ(ModeOf(dir + "/candies.db"), 0600);
}

TEST(StoreMigration, RowsFromBeforeIdentitiesBelongToNobody) {
  const std::string dir = (fs::path(::testing::TempDir()) / "candies_migration_test").string();
  fs::remove_all(dir);
  {
    auto store = Store::Open(dir);
    ASSERT_TRUE(store.ok());
    v1::Job job;
    job.set_id("job-old");
    job.set_owner("alice");  // client-chosen, in the old days
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    ASSERT_TRUE((*store)->PutJob(job).ok());
    v1::Dataset dataset;
    dataset.set_id("ds-old");
    dataset.set_owner("alice");
    ASSERT_TRUE((*store)->PutDatasetRow(dataset, dir + "/old.h5ad", /*owned=*/true).ok());
    v1::Model model;
    model.set_id("model-old");
    model.set_owner("bob");
    ASSERT_TRUE((*store)->PutModel(model).ok());
    EXPECT_EQ((*store)->cleared_owners_on_open(), 0);
  }
  // Make it look like a store of the previous version.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/candies.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 0", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(dir);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->cleared_owners_on_open(), 3);
  auto job = (*store)->GetJob("job-old");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->owner(), "");
  EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED);  // the rest of the row is kept
  auto dataset = (*store)->GetDataset("ds-old");
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(dataset->owner(), "");
  std::vector<v1::Model> models = (*store)->ListModels();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].id(), "model-old");
  EXPECT_EQ(models[0].owner(), "");
  Principal alice{"alice", Role::kUser}, root{"root", Role::kAdmin};
  EXPECT_FALSE(alice.Sees(job->owner()));
  EXPECT_TRUE(root.Sees(job->owner()));
}

TEST(LogTest, ClientStringsCannotForgeLines) {
  const std::string evil = "mallory\nts=2026-01-01T00:00:00Z level=info msg=\"audit\" identity=root";
  const std::string line = FormatLogLine("info", "job started", {{"owner", evil}, {"job", "job-1"}});
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line,
            "level=info msg=\"job started\" owner=\"mallory\\nts=2026-01-01T00:00:00Z level=info "
            "msg=\\\"audit\\\" identity=root\" job=job-1");
  EXPECT_EQ(LogValue("a b"), "\"a b\"");
  EXPECT_EQ(LogValue("x\x01y\\"), "\"x\\x01y\\\\\"");
  EXPECT_EQ(LogValue(""), "\"\"");
  EXPECT_EQ(LogValue("ds-0123abcd"), "ds-0123abcd");
}

TEST_F(ServiceTest, MutatingCallsLeaveAnAuditLine) {
  v1::Dataset d;
  ASSERT_TRUE(Upload(4, 2, &d).ok());
  v1::DeleteDatasetRequest del;
  del.set_id(d.id());
  v1::DeleteDatasetResponse resp;
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(stub_->DeleteDataset(Ctx().get(), del, &resp).ok());
  EXPECT_FALSE(stub_->DeleteDataset(Ctx("bob").get(), del, &resp).ok());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(absl::StrCat("msg=\"audit\" rpc=DeleteDataset identity=alice role=user peer=")),
            std::string::npos) << err;
  EXPECT_NE(err.find(absl::StrCat("object=", d.id(), " code=OK")), std::string::npos) << err;
  EXPECT_NE(err.find(absl::StrCat("identity=bob role=user")), std::string::npos) << err;
  EXPECT_NE(err.find(absl::StrCat("object=", d.id(), " code=NOT_FOUND")), std::string::npos) << err;
}

TEST(AuthTest, CertificateIdentitiesAndRoles) {
  AuthOptions o;
  o.mtls = true;
  o.admin_identities = {"ops"};
  Authenticator auth(o);
  auto ops = auth.FromCertificate("ops");
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(ops->admin());
  auto carol = auth.FromCertificate("carol@lab");
  ASSERT_TRUE(carol.ok());
  EXPECT_EQ(carol->name, "carol@lab");
  EXPECT_FALSE(carol->admin());
  // Names that could not be logged bare or that are empty are refused.
  EXPECT_EQ(auth.FromCertificate("a b").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.FromCertificate("").status().code(), absl::StatusCode::kUnauthenticated);
  // Without mTLS configured, no certificate identity counts.
  Authenticator none(AuthOptions{});
  EXPECT_FALSE(none.FromCertificate("ops").ok());
}

TEST(TokenFileTest, StoresOnlySaltedHashes) {
  const std::string path = (fs::path(::testing::TempDir()) / "candies_tokens_test").string();
  auto a = MakeToken("alice", "user");
  auto b = MakeToken("alice2", "admin");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->entry.salt_hex, b->entry.salt_hex);
  ASSERT_TRUE(WriteTokenFile(path, {a->entry, b->entry}).ok());
  EXPECT_EQ(ModeOf(path), 0600);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(a->token), std::string::npos);
  EXPECT_EQ(text.find(a->token.substr(4)), std::string::npos);
  auto back = ReadTokenFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_TRUE(TokenMatches((*back)[0], a->token));
  EXPECT_FALSE(TokenMatches((*back)[0], b->token));
  EXPECT_FALSE(TokenMatches((*back)[0], a->token + "x"));
  EXPECT_EQ((*back)[1].role, "admin");
  EXPECT_FALSE(MakeToken("bad name", "user").ok());
  EXPECT_FALSE(MakeToken("carol", "root").ok());
}

}  // namespace
}  // namespace candies::server::service_testing
