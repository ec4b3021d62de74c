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

TEST(ConfigTest, MaxAttemptsDefaultsToTwo) {
  auto c = ParseDaemonConfig({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_attempts, 2);
  c = ParseDaemonConfig({"--max-attempts", "5"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_attempts, 5);
  EXPECT_FALSE(ParseDaemonConfig({"--max-attempts", "0"}).ok());
}

TEST(ConfigTest, WorkerSettings) {
  auto c = ParseDaemonConfig({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->executor, "process");
  EXPECT_EQ(c->worker_max_memory_bytes, int64_t{32} << 30);
  EXPECT_EQ(c->worker_timeout_seconds, 86400);
  c = ParseDaemonConfig({"--executor", "thread", "--worker-max-memory-bytes", "0",
                         "--worker-timeout-seconds", "60", "--worker", "/opt/w"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->executor, "thread");
  EXPECT_EQ(c->worker_max_memory_bytes, 0);  // 0 = no limit
  EXPECT_EQ(c->worker_timeout_seconds, 60);
  EXPECT_EQ(c->worker, "/opt/w");
  auto bad = ParseDaemonConfig({"--executor", "kubernetes"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("executor: 'kubernetes' is not process|slurm|thread"),
            absl::string_view::npos)
      << bad.status();
  bad = ParseDaemonConfig({"--worker-timeout-seconds", "-1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("worker-timeout-seconds"), absl::string_view::npos);
}

TEST(ConfigTest, SlurmSettings) {
  auto c = ParseDaemonConfig({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->slurm_sbatch, "sbatch");
  EXPECT_EQ(c->slurm_cpus_per_task, 4);
  EXPECT_EQ(c->slurm_poll_milliseconds, 1000);
  EXPECT_TRUE(c->slurm_gres.empty());
  c = ParseDaemonConfig({"--executor", "slurm", "--slurm-partition", "gpu-a100",
                         "--slurm-account", "lab_1", "--slurm-time-limit", "1-00:00:00",
                         "--slurm-memory", "16G", "--slurm-gres", "gpu:a100:1",
                         "--slurm-cpus-per-task", "8", "--slurm-poll-milliseconds", "200",
                         "--slurm-sbatch", "/opt/slurm/bin/sbatch", "--slurm-scontrol", "/s/scontrol",
                         "--slurm-scancel", "/s/scancel", "--slurm-command-timeout-seconds", "5",
                         "--slurm-unreachable-seconds", "60", "--slurm-result-wait-seconds", "0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->executor, "slurm");
  EXPECT_EQ(c->slurm_partition, "gpu-a100");
  EXPECT_EQ(c->slurm_account, "lab_1");
  EXPECT_EQ(c->slurm_time_limit, "1-00:00:00");
  EXPECT_EQ(c->slurm_memory, "16G");
  EXPECT_EQ(c->slurm_gres, "gpu:a100:1");
  EXPECT_EQ(c->slurm_cpus_per_task, 8);
  EXPECT_EQ(c->slurm_poll_milliseconds, 200);
  EXPECT_EQ(c->slurm_sbatch, "/opt/slurm/bin/sbatch");
  EXPECT_EQ(c->slurm_scontrol, "/s/scontrol");
  EXPECT_EQ(c->slurm_scancel, "/s/scancel");
  EXPECT_EQ(c->slurm_command_timeout_seconds, 5);
  EXPECT_EQ(c->slurm_unreachable_seconds, 60);
  EXPECT_EQ(c->slurm_result_wait_seconds, 0);
  EXPECT_TRUE(ParseDaemonConfig({"--slurm-memory", "4096"}).ok());
  EXPECT_TRUE(ParseDaemonConfig({"--slurm-time-limit", "90"}).ok());
  const std::pair<const char*, const char*> bad[] = {
      {"slurm-memory", "16GB"},       {"slurm-memory", "G"},          {"slurm-memory", "-1G"},
      {"slurm-time-limit", "1 day"},  {"slurm-partition", "a b"},     {"slurm-partition", ""},
      {"slurm-account", "--qos=x;"},  {"slurm-gres", "gpu:1 --x"},    {"slurm-cpus-per-task", "0"},
      {"slurm-poll-milliseconds", "-5"}, {"slurm-result-wait-seconds", "x"},
      {"slurm-time-limit", "1:2:3:4"}, {"slurm-time-limit", "1-"},
  };
  for (const auto& [key, value] : bad) {
    auto r = ParseDaemonConfig({std::string("--") + key, value});
    ASSERT_FALSE(r.ok()) << key << "=" << value;
    EXPECT_NE(r.status().message().find(key), absl::string_view::npos) << r.status();
  }
}

TEST(ConfigTest, DeviceSlots) {
  // Without device-slots: `workers` slots of `device`, as before.
  auto c = ParseDaemonConfig({"--workers", "3", "--device", "cuda:1"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->device_slots.empty());
  EXPECT_EQ(EffectiveDeviceSlots(*c), (std::vector<DeviceSlotGroup>{{"cuda:1", 3}}));
  c = ParseDaemonConfig({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(EffectiveDeviceSlots(*c), (std::vector<DeviceSlotGroup>{{"auto", 1}}));

  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "candiesd_slots.conf").string();
  std::ofstream(path) << "device-slots = cuda:0=1, cuda:1=1, cpu=2\n";
  c = ParseDaemonConfig({"--config", path});
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<DeviceSlotGroup> want = {{"cuda:0", 1}, {"cuda:1", 1}, {"cpu", 2}};
  EXPECT_EQ(EffectiveDeviceSlots(*c), want);

  // A bad value: the file, the line, the key and the entry.
  std::ofstream(path) << "# slots\ndevice-slots = cuda:0=1, gpu=2\n";
  c = ParseDaemonConfig({"--config", path});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path + ":2: device-slots: 'gpu=2'"), std::string::npos)
      << c.status();
  c = ParseDaemonConfig({"--device-slots", "cpu=0"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--device-slots: 'cpu=0'"), std::string::npos) << c.status();

  // device-slots replaces workers and device: both set is an error, wherever
  // each was given.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--device-slots", "cpu=2", "--workers", "2"},
        std::vector<std::string>{"--device", "cpu", "--device-slots", "cpu=2"}}) {
    c = ParseDaemonConfig(args);
    ASSERT_FALSE(c.ok()) << args[0];
    EXPECT_NE(c.status().message().find("device-slots: replaces"), std::string::npos) << c.status();
  }
  std::ofstream(path) << "workers = 4\n";
  c = ParseDaemonConfig({"--config", path, "--device-slots", "cpu=1"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("replaces workers"), std::string::npos) << c.status();
}

TEST(ConfigTest, HttpSettings) {
  auto c = ParseDaemonConfig({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->http_api);
  EXPECT_FALSE(c->metrics_require_token);  // /metrics stays open unless asked
  EXPECT_EQ(c->http_max_report_bytes, int64_t{64} << 20);
  EXPECT_EQ(c->max_page_size, 1000);
  c = ParseDaemonConfig({"--http-api", "false", "--metrics-require-token", "true",
                         "--http-max-report-bytes", "1000", "--http-max-body-bytes", "10",
                         "--max-page-size", "50", "--http-metrics-cache-entries", "3"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->http_api);
  EXPECT_TRUE(c->metrics_require_token);
  EXPECT_EQ(c->http_max_report_bytes, 1000);
  EXPECT_EQ(c->http_max_body_bytes, 10);
  EXPECT_EQ(c->max_page_size, 50);
  EXPECT_EQ(c->http_metrics_cache_entries, 3);
  auto bad = ParseDaemonConfig({"--metrics-require-token", "yes"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("metrics-require-token: 'yes' is not true|false"),
            absl::string_view::npos)
      << bad.status();
  EXPECT_FALSE(ParseDaemonConfig({"--max-page-size", "0"}).ok());
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
  EXPECT_EQ(c->token_file, "/etc/candies/auth/tokens");
  EXPECT_EQ(c->max_user_priority, 0);
  EXPECT_EQ(c->max_streams_per_user, 16);
  EXPECT_TRUE(ValidateDaemonConfig(*c).ok()) << ValidateDaemonConfig(*c);
  // The container's config listens everywhere, so it must authenticate over TLS.
  auto docker = ParseDaemonConfig({"--config", CANDIES_SOURCE_DIR "/docker/candiesd.conf"});
  ASSERT_TRUE(docker.ok()) << docker.status();
  EXPECT_EQ(docker->listen, "0.0.0.0:50051");
  EXPECT_FALSE(docker->token_file.empty());
  EXPECT_FALSE(docker->tls_cert.empty());
  EXPECT_TRUE(ValidateDaemonConfig(*docker).ok());
  docker->token_file.clear();
  EXPECT_FALSE(ValidateDaemonConfig(*docker).ok());
  auto bad = ParseDaemonConfig({"--model-memory-budget", "-1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("model-memory-budget"), absl::string_view::npos);
}

// Issue 14: no start without authentication; dev mode only on loopback.
TEST(ConfigTest, AuthenticationIsRequiredAndDevModeIsLoopbackOnly) {
  auto c = ParseDaemonConfig({});
  ASSERT_TRUE(c.ok());
  absl::Status s = ValidateDaemonConfig(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no authentication configured"), absl::string_view::npos) << s;
  c = ParseDaemonConfig({"--token-file", "/etc/candies/tokens"});
  EXPECT_TRUE(ValidateDaemonConfig(*c).ok());
  c = ParseDaemonConfig({"--insecure-dev-mode"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->insecure_dev_mode);
  EXPECT_TRUE(ValidateDaemonConfig(*c).ok());
  for (const char* host : {"0.0.0.0:50051", "10.1.2.3:1", "[::]:1", "example.org:1", "128.0.0.1:1",
                           "127.0.0.1.evil.org:1"}) {
    c = ParseDaemonConfig({"--insecure-dev-mode", "--listen", host});
    ASSERT_TRUE(c.ok()) << c.status();
    s = ValidateDaemonConfig(*c);
    EXPECT_FALSE(s.ok()) << host;
    EXPECT_NE(s.message().find("loopback"), absl::string_view::npos) << s;
  }
  for (const char* host : {"127.0.0.1:0", "127.8.9.10:5", "[::1]:50051", "localhost:1"}) {
    EXPECT_TRUE(IsLoopbackAddress(host)) << host;
  }
  c = ParseDaemonConfig({"--insecure-dev-mode", "--metrics-listen", "0.0.0.0:9464"});
  EXPECT_FALSE(ValidateDaemonConfig(*c).ok());
  c = ParseDaemonConfig({"--token-file", "t", "--tls-cert", "c.pem"});
  s = ValidateDaemonConfig(*c);
  EXPECT_NE(s.message().find("tls-key"), absl::string_view::npos) << s;
  c = ParseDaemonConfig({"--tls-client-ca", "ca.pem"});
  s = ValidateDaemonConfig(*c);
  EXPECT_NE(s.message().find("tls-client-ca"), absl::string_view::npos) << s;
  c = ParseDaemonConfig({"--tls-client-ca", "ca.pem", "--tls-cert", "c", "--tls-key", "k",
                         "--admin-identity", "ops", "--admin-identity", "root"});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(ValidateDaemonConfig(*c).ok());
  EXPECT_EQ(c->admin_identities, (std::vector<std::string>{"ops", "root"}));
}

}  // namespace
}  // namespace candies::server
