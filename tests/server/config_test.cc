#include "server/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace candies::server {
namespace {

TEST(ConfigTest, FileThenFlagsOverride) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "candiesd_test.conf").string();
  std::ofstream(path) << "# comment\nworkers = 3\nmax-queue=7\nallowed-dir = /a\n"
                         "allowed-dir = /b\ndata-dir = /tmp/x  # trailing\n";
  auto c = ParseDaemonConfig({"--config", path, "--max-queue", "9", "--listen=127.0.0.1:0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->workers, 3);
  EXPECT_EQ(c->max_queue, 9);
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_EQ(c->data_dir, "/tmp/x");
  EXPECT_EQ(c->allowed_dirs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9464");
}

TEST(ConfigTest, ErrorsNameTheKey) {
  auto bad = ParseDaemonConfig({"--workers", "zero"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("workers"), absl::string_view::npos);
  bad = ParseDaemonConfig({"--wrokers", "2"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("wrokers"), absl::string_view::npos);
  bad = ParseDaemonConfig({"--listen"});
  EXPECT_FALSE(bad.ok());
  bad = ParseDaemonConfig({"--config", "/nonexistent/candiesd.conf"});
  EXPECT_FALSE(bad.ok());
}

// The example config shipped in deploy/ stays valid and says what it means.
TEST(ConfigTest, ShippedExampleParses) {
  auto c = ParseDaemonConfig({"--config", CANDIES_SOURCE_DIR "/deploy/candiesd.conf"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, "/var/lib/candies");
  EXPECT_EQ(c->workers, 1);
  EXPECT_EQ(c->max_queued_per_owner, 100);
  EXPECT_EQ(c->max_dataset_bytes_per_owner, int64_t{64} << 30);
  EXPECT_EQ(c->model_memory_budget, int64_t{4} << 30);
  EXPECT_TRUE(c->allowed_dirs.empty());
  auto bad = ParseDaemonConfig({"--model-memory-budget", "-1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("model-memory-budget"), absl::string_view::npos);
}

}  // namespace
}  // namespace candies::server
