// ModelRegistry: residency within a byte budget, LRU eviction, pinning,
// persistence across a restart (a new Store + registry on the same folder).
#include "server/model_registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace candies::server {
namespace {
namespace fs = std::filesystem;

// A "model" is a folder with a file `bytes` holding its size; loading counts.
class SizedModel : public ResidentModel {
 public:
  explicit SizedModel(int64_t bytes) : bytes_(bytes) {}
  int64_t bytes() const override { return bytes_; }
  Info info() const override {
    Info i;
    i.low_quality = "mod1";
    i.low_kind = "rna";
    i.high_kind = "protein";
    i.n_high_features = 7;
    i.n_low_features = bytes_;
    return i;
  }

 private:
  int64_t bytes_;
};

class SizedBackend : public JobBackend {
 public:
  absl::StatusOr<std::string> Run(const JobSpec&, const ProgressSink&, const CancelToken*) override {
    return absl::UnimplementedError("not used");
  }
  absl::StatusOr<std::shared_ptr<const ResidentModel>> LoadModel(const std::string& dir) override {
    std::ifstream in(dir + "/bytes");
    int64_t n = 0;
    if (!(in >> n)) return absl::NotFoundError(absl::StrCat("no model in ", dir));
    ++loads;
    return std::shared_ptr<const ResidentModel>(std::make_shared<SizedModel>(n));
  }
  int loads = 0;
};

class ModelRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One folder per test: ctest runs the cases in parallel.
    dir_ = (fs::path(::testing::TempDir()) /
            absl::StrCat("candies_model_registry_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    Reopen();
  }
  void Reopen() {
    registry_.reset();
    store_.reset();
    auto s = Store::Open(dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    registry_ = std::make_unique<ModelRegistry>(100, store_.get(), &backend_,
                                                [this](int n, int64_t b) {
                                                  notified_count = n;
                                                  notified_bytes = b;
                                                });
  }
  // Writes a model folder of `bytes` and records it as a job would.
  absl::StatusOr<v1::Model> AddModel(const std::string& id, int64_t bytes, int64_t created) {
    fs::create_directories(store_->ModelDir(id));
    std::ofstream(store_->ModelDir(id) + "/bytes") << bytes;
    v1::Model m;
    m.set_id(id);
    m.set_owner("alice");
    m.set_created_unix(created);
    m.set_source_job("job-" + id);
    return registry_->Add(m);
  }
  bool Resident(const std::string& id) {
    auto m = registry_->Get(id);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() && m->resident();
  }

  std::string dir_;
  SizedBackend backend_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  int notified_count = -1;
  int64_t notified_bytes = -1;
};

TEST_F(ModelRegistryTest, EvictsLeastRecentlyUsedWithinBudget) {
  ASSERT_TRUE(AddModel("a", 40, 1).ok());
  ASSERT_TRUE(AddModel("b", 40, 2).ok());
  EXPECT_EQ(registry_->resident_bytes(), 80);
  EXPECT_EQ(notified_count, 2);
  EXPECT_EQ(notified_bytes, 80);
  // Use a, so b is the least recently used when c needs room.
  ASSERT_TRUE(registry_->Acquire("a").ok());
  auto c = AddModel("c", 40, 3);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(Resident("a"));
  EXPECT_FALSE(Resident("b"));
  EXPECT_TRUE(Resident("c"));
  EXPECT_EQ(registry_->resident_bytes(), 80);
  // The description comes from the loaded model.
  EXPECT_EQ(c->n_low_features(), 40);
  EXPECT_EQ(c->high_kind(), "protein");
  // An evicted model loads again on its next use (and evicts the LRU, a).
  const int loads = backend_.loads;
  auto b = registry_->Acquire("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->bytes(), 40);
  EXPECT_EQ(backend_.loads, loads + 1);
  EXPECT_FALSE(Resident("a"));
  // Newest first.
  auto list = registry_->List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id(), "c");
  EXPECT_EQ(list[2].id(), "a");
}

TEST_F(ModelRegistryTest, PinnedModelsStayAndComeBackAfterRestart) {
  ASSERT_TRUE(AddModel("a", 60, 1).ok());
  auto pinned = registry_->Pin("a", true);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_TRUE(pinned->pinned());
  // 60 pinned + 60 > 100 and nothing can be evicted: b is recorded, not resident.
  auto b = AddModel("b", 60, 2);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("model-memory-budget"), std::string::npos);
  EXPECT_TRUE(Resident("a"));
  EXPECT_FALSE(Resident("b"));
  EXPECT_EQ(registry_->Load("b").status().code(), absl::StatusCode::kResourceExhausted);
  // Larger than the whole budget.
  auto huge = AddModel("huge", 500, 3);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);

  Reopen();
  EXPECT_EQ(registry_->List().size(), 3u);
  EXPECT_FALSE(Resident("a"));  // nothing is loaded until LoadPinned
  ASSERT_TRUE(registry_->LoadPinned().ok());
  EXPECT_TRUE(Resident("a"));
  EXPECT_FALSE(Resident("b"));
  auto a = registry_->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->pinned());
  EXPECT_EQ(a->owner(), "alice");
  EXPECT_EQ(a->source_job(), "job-a");

  // Unload unpins; then b fits.
  auto un = registry_->Unload("a");
  ASSERT_TRUE(un.ok());
  EXPECT_FALSE(un->pinned());
  EXPECT_FALSE(un->resident());
  EXPECT_TRUE(registry_->Load("b").ok());
  EXPECT_EQ(registry_->resident_bytes(), 60);
}

TEST_F(ModelRegistryTest, DeleteRemovesRecordAndFiles) {
  ASSERT_TRUE(AddModel("a", 10, 1).ok());
  ASSERT_TRUE(fs::exists(store_->ModelDir("a")));
  ASSERT_TRUE(registry_->Delete("a").ok());
  EXPECT_FALSE(fs::exists(store_->ModelDir("a")));
  EXPECT_EQ(registry_->Get("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->Delete("a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->Acquire("zzz").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(notified_bytes, 0);
  Reopen();
  EXPECT_TRUE(registry_->List().empty());
}

}  // namespace
}  // namespace candies::server
