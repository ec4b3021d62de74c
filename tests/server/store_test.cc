#include "server/store.h"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>

#include "core/io/h5ad.h"

namespace candies::server {
namespace {
namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const fs::path p = fs::path(::testing::TempDir()) / ("candies_store_" + name);
  fs::remove_all(p);
  return p.string();
}

AnnData SmallAnnData() {
  AnnData a;
  a.X = Matrix::Dense(3, 2, {1, 2, 3, 4, 5, 6});
  a.obs.index = {"s0", "s1", "s2"};
  a.var.index = {"g0", "g1"};
  a.obsm["spatial"] = Matrix::Dense(3, 2, {0, 0, 1, 0, 0, 1});
  return a;
}

TEST(StoreTest, DatasetAndJobsSurviveReopenAndRunningIsRequeued) {
  const std::string dir = TempDir("reopen");
  std::string ds_id;
  {
    auto store = Store::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    v1::Dataset d;
    d.set_id(NewId("ds"));
    d.set_name("rna");
    d.set_n_obs(3);
    d.set_n_vars(2);
    ASSERT_TRUE((*store)->PutDataset(d, SmallAnnData()).ok());
    EXPECT_GT(d.size_bytes(), 0);
    ds_id = d.id();
    v1::Job running, done;
    running.set_id("job-a");
    running.set_state(v1::JOB_STATE_RUNNING);
    running.set_attempt(1);
    running.set_stage("gae_mod1");
    done.set_id("job-b");
    done.set_state(v1::JOB_STATE_SUCCEEDED);
    ASSERT_TRUE((*store)->PutJob(running).ok());
    ASSERT_TRUE((*store)->PutJob(done).ok());
    EXPECT_EQ((*store)->requeued_on_open(), 0);
  }
  auto store = Store::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->requeued_on_open(), 1);
  auto a = (*store)->GetJob("job-a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(a->attempt(), 2);
  EXPECT_EQ(a->stage(), "");
  EXPECT_EQ((*store)->GetJob("job-b")->state(), v1::JOB_STATE_SUCCEEDED);
  // Newest first.
  auto jobs = (*store)->ListJobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id(), "job-b");
  EXPECT_EQ((*store)->ListJobs(v1::JOB_STATE_QUEUED).size(), 1u);

  // The dataset row and its file: the matrix reads back unchanged.
  auto d = (*store)->GetDataset(ds_id);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->name(), "rna");
  auto path = (*store)->GetDatasetFile(ds_id);
  ASSERT_TRUE(path.ok());
  auto back = ReadH5ad(*path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ToDense(back->X).values, SmallAnnData().X.values);
  EXPECT_FALSE(fs::exists(*path + ".tmp"));

  ASSERT_TRUE((*store)->DeleteDataset(ds_id).ok());
  EXPECT_FALSE(fs::exists(*path));
  EXPECT_TRUE(absl::IsNotFound((*store)->GetDataset(ds_id).status()));
  EXPECT_TRUE(absl::IsNotFound((*store)->DeleteDataset(ds_id)));
  EXPECT_TRUE(absl::IsNotFound((*store)->GetJob("job-zzz").status()));
}

v1::Job RunningJob(const std::string& id) {
  v1::Job j;
  j.set_id(id);
  j.set_state(v1::JOB_STATE_RUNNING);
  j.set_attempt(1);
  return j;
}

// A job whose input kills the daemon stayed RUNNING and was requeued at every
// start, without end. Now it runs at most max_attempts times.
TEST(StoreTest, InterruptedJobFailsAfterMaxAttempts) {
  const std::string dir = TempDir("attempts");
  {
    auto store = Store::Open(dir, 2);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutJob(RunningJob("job-crash")).ok());
  }
  for (int start = 1; start <= 3; ++start) {
    auto store = Store::Open(dir, 2);
    ASSERT_TRUE(store.ok()) << store.status();
    auto j = (*store)->GetJob("job-crash");
    ASSERT_TRUE(j.ok());
    if (start == 1) {
      // First restart: requeued for its second run; the daemon "crashes" again.
      EXPECT_EQ((*store)->requeued_on_open(), 1);
      EXPECT_EQ(j->state(), v1::JOB_STATE_QUEUED);
      EXPECT_EQ(j->attempt(), 2);
      v1::Job again = *j;
      again.set_state(v1::JOB_STATE_RUNNING);
      ASSERT_TRUE((*store)->PutJob(again).ok());
    } else {
      // Second restart: two runs done, no third; later starts leave it alone.
      EXPECT_EQ((*store)->requeued_on_open(), 0);
      EXPECT_EQ((*store)->failed_on_open(), start == 2 ? 1 : 0);
      EXPECT_EQ(j->state(), v1::JOB_STATE_FAILED);
      EXPECT_EQ(j->error(), "interrupted by daemon restart 2 times (max-attempts = 2)");
      EXPECT_GT(j->finished_unix(), 0);
    }
  }
}

// A database written before the attempts column: migrated on open, and the
// count in the job's message is honoured.
TEST(StoreTest, OldDatabaseGetsTheAttemptsColumn) {
  const std::string dir = TempDir("migrate");
  fs::create_directories(dir);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((fs::path(dir) / "candies.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE jobs (id TEXT PRIMARY KEY, state INTEGER NOT NULL, "
                         "created INTEGER NOT NULL, seq INTEGER NOT NULL, msg BLOB NOT NULL)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  v1::Job j = RunningJob("job-old");
  j.set_attempt(3);  // already requeued twice by the old daemon
  const std::string blob = j.SerializeAsString();
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO jobs VALUES ('job-old', ?1, 0, 1, ?2)", -1, &st,
                               nullptr),
            SQLITE_OK);
  sqlite3_bind_int(st, 1, v1::JOB_STATE_RUNNING);
  sqlite3_bind_blob(st, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);

  auto store = Store::Open(dir, 5);
  ASSERT_TRUE(store.ok()) << store.status();
  auto got = (*store)->GetJob("job-old");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(got->attempt(), 4);
}

TEST(StoreTest, UnwritableDataDirIsAnError) {
  auto store = Store::Open("/proc/candies-cannot-exist");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace candies::server
