// candiesd's settings: command-line flags, optionally a --config FILE of
// `key = value` lines (same keys as the flags, without "--"; '#' comments).
// Flags given on the command line override the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace candies::server {

struct DaemonConfig {
  std::string listen = "127.0.0.1:50051";         // gRPC address; port 0 = pick a free one
  std::string metrics_listen = "127.0.0.1:9464";  // Prometheus /metrics; "" = off
  std::string data_dir = "./candies-data";        // database, datasets, results
  int workers = 1;                                // jobs running at once
  int max_queue = 1000;                           // queued jobs; more is RESOURCE_EXHAUSTED
  int64_t max_upload_bytes = int64_t{4} << 30;    // X bytes (float32) of one upload
  int max_queued_per_owner = 100;                 // one owner's queued jobs
  int64_t max_dataset_bytes_per_owner = int64_t{64} << 30;  // one owner's stored uploads
  int max_obs_columns = 64;                       // extra obs columns of one upload
  int64_t model_memory_budget = int64_t{4} << 30;  // resident trained models, bytes
  std::vector<std::string> allowed_dirs;          // RegisterDataset roots (repeatable)
  std::string device = "auto";                    // auto | cpu | cuda | cuda:N
};

// Parses argv[1..]. Unknown keys, missing values and bad numbers are errors
// naming the key.
absl::StatusOr<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args);
std::string DaemonUsage();

}  // namespace candies::server
