// candiesd's settings: command-line flags, optionally a --config FILE of
// `key = value` lines (same keys as the flags, without "--"; '#' comments).
// Flags given on the command line override the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/device_slots.h"

namespace candies::server {

struct DaemonConfig {
  std::string listen = "127.0.0.1:50051";         // gRPC address; port 0 = pick a free one
  std::string metrics_listen = "127.0.0.1:9464";  // Prometheus /metrics; "" = off
  std::string data_dir = "./candies-data";        // database, datasets, results
  int workers = 1;                                // jobs running at once (no device-slots)
  int max_queue = 1000;                           // queued jobs; more is RESOURCE_EXHAUSTED
  int64_t max_upload_bytes = int64_t{4} << 30;    // X bytes (float32) of one upload
  int max_queued_per_owner = 100;                 // one owner's queued jobs
  int64_t max_dataset_bytes_per_owner = int64_t{64} << 30;  // one owner's stored uploads
  int max_obs_columns = 64;                       // extra obs columns of one upload
  int64_t model_memory_budget = int64_t{4} << 30;  // resident trained models, bytes
  std::vector<std::string> allowed_dirs;          // RegisterDataset roots (repeatable)
  std::string device = "auto";                    // auto | cpu | cuda | cuda:N (no device-slots)
  // Jobs at once per device ("cuda:0=1, cuda:1=1, cpu=2"; server/device_slots.h);
  // empty: `workers` slots of `device`. Setting it with workers or device is an error.
  std::vector<DeviceSlotGroup> device_slots;
  // Where jobs run (docs/SERVICE.md, "Workers"): "process" = each job in its
  // own candies-worker process (the daemon survives any job); "slurm" = each
  // job a Slurm batch job running candies-worker on a cluster node (docs/SERVICE.md,
  // "Slurm"); "thread" = inside the daemon (development only: a crashing job
  // takes the daemon down).
  std::string executor = "process";
  std::string worker;                                      // "" = candies-worker beside candiesd
  int64_t worker_max_memory_bytes = int64_t{32} << 30;     // RLIMIT_DATA of a worker; 0 = none
  int64_t worker_timeout_seconds = int64_t{24} * 3600;     // wall clock of a worker; 0 = none
  // executor = slurm (server/slurm_backend.h): sbatch's requests ("" = the
  // cluster's default), how the daemon follows a job, and the tools' paths.
  std::string slurm_partition, slurm_account;
  std::string slurm_time_limit;   // sbatch --time: MINUTES, [D-]HH:MM:SS, ...
  std::string slurm_memory;       // sbatch --mem: 16G, 4096M, ...
  std::string slurm_gres;         // sbatch --gres for jobs not on device cpu: gpu:1
  int slurm_cpus_per_task = 4;    // sbatch --cpus-per-task; a job's threads by default
  int slurm_poll_milliseconds = 1000;           // scontrol and the report file, per running job
  std::string slurm_sbatch = "sbatch", slurm_scontrol = "scontrol", slurm_scancel = "scancel";
  int slurm_command_timeout_seconds = 60;       // one sbatch/scontrol/scancel call
  int64_t slurm_unreachable_seconds = 600;      // scontrol failing this long: job FAILED
  int64_t slurm_result_wait_seconds = 30;       // COMPLETED, outcome not yet visible on the shared disk

  // Identities and TLS (docs/SECURITY.md). The daemon refuses to start without
  // token_file, tls_client_ca or insecure_dev_mode.
  std::string token_file;                  // bearer tokens (candies token add)
  std::string tls_cert, tls_key;           // server certificate chain and key (PEM)
  std::string tls_client_ca;               // CA of client certificates: mTLS identities
  std::vector<std::string> admin_identities;  // certificate identities with role admin (repeatable)
  bool insecure_dev_mode = false;          // no authentication; loopback addresses only
  int max_user_priority = 0;               // SubmitJob priority above this: admins only
  int64_t max_deadline_seconds = int64_t{7} * 24 * 3600;  // bound of deadline_seconds
  int max_streams = 256;                   // open WatchJob streams in total
  int max_streams_per_user = 16;           // open WatchJob streams of one identity
  int metrics_threads = 4;                 // /metrics worker threads
  int metrics_read_timeout_seconds = 5;    // a scrape request must arrive within this
  int metrics_write_timeout_seconds = 5;   // and its answer be taken within this
  // The HTTP server on metrics-listen (docs/SERVICE.md, "HTTP/JSON API").
  bool http_api = true;                    // serve the JSON API (/v1/..., /healthz, /openapi.json)
  bool metrics_require_token = false;      // /metrics needs a valid bearer token too
  int64_t http_max_report_bytes = int64_t{64} << 20;  // largest job report GET .../report serves
  int64_t http_max_body_bytes = 4096;      // request bodies (the API reads none)
  int http_metrics_cache_entries = 256;    // jobs whose /v1/jobs/{id}/metrics stay cached
  int max_page_size = 1000;                // ListJobs / GET /v1/jobs page_size limit
  // Runs of one job; a job interrupted by this many daemon restarts ends FAILED
  // instead of being requeued again (no crash loop on an input that kills us).
  int max_attempts = 2;
  // Validation of uploaded / registered files in a sandboxed child (docs/SERVICE.md).
  std::string validator;                                 // "" = candies-validate beside candiesd
  int64_t validate_max_memory_bytes = int64_t{8} << 30;  // RLIMIT_AS of the child
  int validate_cpu_seconds = 300;                        // RLIMIT_CPU of the child
  int validate_timeout_seconds = 600;                    // wall clock, then SIGKILL
  int64_t max_register_bytes = int64_t{64} << 30;        // largest file RegisterDataset copies
  // ReadLimits for untrusted files (docs/FORMATS.md).
  int64_t read_max_elements = int64_t{1} << 32;
  int64_t read_max_total_bytes = int64_t{64} << 30;
  int64_t read_max_string_bytes = int64_t{1} << 20;
  int64_t read_max_group_members = 100000;
};

// The checks that need the whole config: TLS files come in pairs, some
// authentication is configured, dev mode listens on loopback only. Errors
// name the key.
absl::Status ValidateDaemonConfig(const DaemonConfig& c);
// The scheduler's slots: device-slots, or `workers` slots of `device`.
std::vector<DeviceSlotGroup> EffectiveDeviceSlots(const DaemonConfig& c);
// "127.0.0.1:50051", "[::1]:0", "localhost:9" are loopback; "0.0.0.0:1" is not.
bool IsLoopbackAddress(const std::string& host_port);

// Parses argv[1..]. Unknown keys, missing values and bad numbers are errors
// naming the key.
absl::StatusOr<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args);
std::string DaemonUsage();

}  // namespace candies::server
