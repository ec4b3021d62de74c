#include "server/store.h"

#include <gtest/gtest.h>

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

TEST(StoreTest, UnwritableDataDirIsAnError) {
  auto store = Store::Open("/proc/candies-cannot-exist");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace candies::server
