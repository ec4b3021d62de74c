#include "server/config.h"

#include <fstream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/status_macros.h"
#include "server/slurm_time.h"

namespace candies::server {
namespace {

constexpr char kWord[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr char kPunct[] = "_.-";

absl::Status Apply(DaemonConfig& c, const std::string& key, const std::string& value,
                   const std::string& where) {
  auto num = [&](auto* out) -> absl::Status {
    if (!absl::SimpleAtoi(value, out) || *out <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, ": '", value, "' is not a positive integer"));
    }
    return absl::OkStatus();
  };
  auto nonneg = [&](int64_t* out) -> absl::Status {
    if (!absl::SimpleAtoi(value, out) || *out < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, ": '", value, "' is not a non-negative integer"));
    }
    return absl::OkStatus();
  };
  // `value` is made of `allowed` characters only (`what` names them).
  auto chars = [&](absl::string_view what, const std::string& allowed) -> absl::Status {
    if (value.empty() || value.find_first_not_of(allowed) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, ": '", value, "' may hold only ", what));
    }
    return absl::OkStatus();
  };
  auto boolean = [&](bool* out) -> absl::Status {
    if (value != "true" && value != "false") {
      return absl::InvalidArgumentError(absl::StrCat(where, key, ": '", value, "' is not true|false"));
    }
    *out = value == "true";
    return absl::OkStatus();
  };
  if (key == "listen") {
    c.listen = value;
  } else if (key == "metrics-listen") {
    c.metrics_listen = value;
  } else if (key == "data-dir") {
    c.data_dir = value;
  } else if (key == "workers") {
    return num(&c.workers);
  } else if (key == "max-queue") {
    return num(&c.max_queue);
  } else if (key == "max-upload-bytes") {
    return num(&c.max_upload_bytes);
  } else if (key == "max-queued-per-owner") {
    return num(&c.max_queued_per_owner);
  } else if (key == "max-dataset-bytes-per-owner") {
    return num(&c.max_dataset_bytes_per_owner);
  } else if (key == "max-obs-columns") {
    return num(&c.max_obs_columns);
  } else if (key == "model-memory-budget") {
    return num(&c.model_memory_budget);
  } else if (key == "allowed-dir") {
    c.allowed_dirs.push_back(value);
  } else if (key == "max-attempts") {
    return num(&c.max_attempts);
  } else if (key == "validator") {
    c.validator = value;
  } else if (key == "validate-max-memory-bytes") {
    return num(&c.validate_max_memory_bytes);
  } else if (key == "validate-cpu-seconds") {
    return num(&c.validate_cpu_seconds);
  } else if (key == "validate-timeout-seconds") {
    return num(&c.validate_timeout_seconds);
  } else if (key == "max-register-bytes") {
    return num(&c.max_register_bytes);
  } else if (key == "read-max-elements") {
    return num(&c.read_max_elements);
  } else if (key == "read-max-total-bytes") {
    return num(&c.read_max_total_bytes);
  } else if (key == "read-max-string-bytes") {
    return num(&c.read_max_string_bytes);
  } else if (key == "read-max-group-members") {
    return num(&c.read_max_group_members);
  } else if (key == "device") {
    c.device = value;
  } else if (key == "device-slots") {
    absl::StatusOr<std::vector<DeviceSlotGroup>> slots = ParseDeviceSlots(value);
    if (!slots.ok()) return absl::InvalidArgumentError(absl::StrCat(where, slots.status().message()));
    c.device_slots = *std::move(slots);
  } else if (key == "executor") {
    if (value != "process" && value != "thread" && value != "slurm") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, ": '", value, "' is not process|slurm|thread"));
    }
    c.executor = value;
  } else if (key == "slurm-partition" || key == "slurm-account") {
    CANDIES_RETURN_IF_ERROR(chars("A-Za-z0-9_.,-", absl::StrCat(kWord, kPunct, ",")));
    (key == "slurm-partition" ? c.slurm_partition : c.slurm_account) = value;
  } else if (key == "slurm-time-limit") {
    absl::StatusOr<int64_t> seconds = ParseSlurmTime(value);
    if (!seconds.ok()) return absl::InvalidArgumentError(absl::StrCat(where, key, ": ", seconds.status().message()));
    c.slurm_time_limit = value;
  } else if (key == "slurm-memory") {
    // Digits and one unit: what sbatch --mem takes.
    const size_t digits = value.find_first_not_of("0123456789");
    if (value.empty() || digits == 0 ||
        (digits != std::string::npos && (digits + 1 != value.size() ||
                                         std::string("KMGT").find(value[digits]) == std::string::npos))) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, ": '", value, "' is not a size like 4096M or 16G"));
    }
    c.slurm_memory = value;
  } else if (key == "slurm-gres") {
    CANDIES_RETURN_IF_ERROR(chars("A-Za-z0-9_.,:- (like gpu:1)", absl::StrCat(kWord, kPunct, ",:")));
    c.slurm_gres = value;
  } else if (key == "slurm-cpus-per-task") {
    return num(&c.slurm_cpus_per_task);
  } else if (key == "slurm-poll-milliseconds") {
    return num(&c.slurm_poll_milliseconds);
  } else if (key == "slurm-sbatch") {
    c.slurm_sbatch = value;
  } else if (key == "slurm-scontrol") {
    c.slurm_scontrol = value;
  } else if (key == "slurm-scancel") {
    c.slurm_scancel = value;
  } else if (key == "slurm-command-timeout-seconds") {
    return num(&c.slurm_command_timeout_seconds);
  } else if (key == "slurm-unreachable-seconds") {
    return num(&c.slurm_unreachable_seconds);
  } else if (key == "slurm-result-wait-seconds") {
    return nonneg(&c.slurm_result_wait_seconds);
  } else if (key == "worker") {
    c.worker = value;
  } else if (key == "worker-max-memory-bytes") {
    return nonneg(&c.worker_max_memory_bytes);
  } else if (key == "worker-timeout-seconds") {
    return nonneg(&c.worker_timeout_seconds);
  } else if (key == "token-file") {
    c.token_file = value;
  } else if (key == "tls-cert") {
    c.tls_cert = value;
  } else if (key == "tls-key") {
    c.tls_key = value;
  } else if (key == "tls-client-ca") {
    c.tls_client_ca = value;
  } else if (key == "admin-identity") {
    c.admin_identities.push_back(value);
  } else if (key == "insecure-dev-mode") {
    return boolean(&c.insecure_dev_mode);
  } else if (key == "http-api") {
    return boolean(&c.http_api);
  } else if (key == "metrics-require-token") {
    return boolean(&c.metrics_require_token);
  } else if (key == "http-max-report-bytes") {
    return num(&c.http_max_report_bytes);
  } else if (key == "http-max-body-bytes") {
    return num(&c.http_max_body_bytes);
  } else if (key == "http-metrics-cache-entries") {
    return num(&c.http_metrics_cache_entries);
  } else if (key == "max-page-size") {
    return num(&c.max_page_size);
  } else if (key == "max-user-priority") {
    if (!absl::SimpleAtoi(value, &c.max_user_priority)) {
      return absl::InvalidArgumentError(absl::StrCat(where, key, ": '", value, "' is not an integer"));
    }
  } else if (key == "max-deadline-seconds") {
    return num(&c.max_deadline_seconds);
  } else if (key == "max-streams") {
    return num(&c.max_streams);
  } else if (key == "max-streams-per-user") {
    return num(&c.max_streams_per_user);
  } else if (key == "metrics-threads") {
    return num(&c.metrics_threads);
  } else if (key == "metrics-read-timeout-seconds") {
    return num(&c.metrics_read_timeout_seconds);
  } else if (key == "metrics-write-timeout-seconds") {
    return num(&c.metrics_write_timeout_seconds);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(where, "unknown key '", key, "'"));
  }
  return absl::OkStatus();
}

absl::Status ApplyFile(DaemonConfig& c, const std::string& path, std::set<std::string>* keys) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--config: cannot read ", path));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::string t(absl::StripAsciiWhitespace(line));
    if (t.empty()) continue;
    const size_t eq = t.find('=');
    const std::string where = absl::StrCat(path, ":", n, ": ");
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected key = value"));
    }
    const std::string key(absl::StripAsciiWhitespace(t.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(t.substr(eq + 1)));
    CANDIES_RETURN_IF_ERROR(Apply(c, key, value, where));
    keys->insert(key);
  }
  return absl::OkStatus();
}

}  // namespace

std::string DaemonUsage() {
  return "usage: candiesd [--listen 127.0.0.1:50051] [--metrics-listen 127.0.0.1:9464]\n"
         "  [--data-dir ./candies-data] [--config FILE] [--workers 1] [--max-queue 1000]\n"
         "  [--max-upload-bytes 4294967296] [--allowed-dir DIR]... [--device auto]\n"
         "  [--device-slots 'cuda:0=1, cpu=2' (instead of --workers/--device)]\n"
         "  [--max-queued-per-owner 100] [--max-dataset-bytes-per-owner 68719476736]\n"
                  "  [--max-obs-columns 64] [--model-memory-budget 4294967296] [--max-attempts 2]\n"
         "  [--validator PATH] [--validate-max-memory-bytes 8589934592] [--validate-cpu-seconds 300]\n"
         "  [--validate-timeout-seconds 600] [--max-register-bytes 68719476736]\n"
         "  [--read-max-elements 4294967296] [--read-max-total-bytes 68719476736]\n"
         "  [--read-max-string-bytes 1048576] [--read-max-group-members 100000]\n"
         "  [--token-file FILE] [--tls-cert PEM --tls-key PEM] [--tls-client-ca PEM]\n"
         "  [--admin-identity NAME]... [--insecure-dev-mode] [--max-user-priority 0]\n"
         "  [--max-deadline-seconds 604800] [--max-streams 256] [--max-streams-per-user 16]\n"
         "  [--metrics-threads 4] [--metrics-read-timeout-seconds 5]\n"
         "  [--metrics-write-timeout-seconds 5] [--http-api true|false]\n"
         "  [--metrics-require-token false|true] [--http-max-report-bytes 67108864]\n"
         "  [--http-max-body-bytes 4096] [--http-metrics-cache-entries 256] [--max-page-size 1000]\n"
         "  [--executor process|slurm|thread] [--worker PATH]\n"
         "  [--worker-max-memory-bytes 34359738368] [--worker-timeout-seconds 86400]\n"
         "  [--slurm-partition NAME] [--slurm-account NAME] [--slurm-time-limit 1-00:00:00]\n"
         "  [--slurm-memory 16G] [--slurm-gres gpu:1] [--slurm-cpus-per-task 4]\n"
         "  [--slurm-poll-milliseconds 1000] [--slurm-sbatch sbatch] [--slurm-scontrol scontrol]\n"
         "  [--slurm-scancel scancel] [--slurm-command-timeout-seconds 60]\n"
         "  [--slurm-unreachable-seconds 600] [--slurm-result-wait-seconds 30]\n"
         "Authentication is required: --token-file, --tls-client-ca, or --insecure-dev-mode\n"
         "(loopback only); see docs/SECURITY.md.\n"
         "Every key also works in the --config file as `key = value` (docs/SERVICE.md).\n";
}

absl::StatusOr<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args) {
  // Split into key/value pairs first so that --config applies before the flags.
  std::vector<std::pair<std::string, std::string>> kv;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "'"));
    const size_t eq = a.find('=');
    // The one switch: --insecure-dev-mode alone means true.
    if (a == "--insecure-dev-mode" && (i + 1 == args.size() || args[i + 1].rfind("--", 0) == 0)) {
      kv.emplace_back("insecure-dev-mode", "true");
    } else if (eq != std::string::npos) {
      kv.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      kv.emplace_back(a.substr(2), args[++i]);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(a, ": missing value"));
    }
  }
  DaemonConfig c;
  std::set<std::string> keys;  // every key given, in the file or as a flag
  for (const auto& [k, v] : kv) {
    if (k == "config") CANDIES_RETURN_IF_ERROR(ApplyFile(c, v, &keys));
  }
  bool flag_allowed = false, flag_admins = false;
  for (const auto& [k, v] : kv) {
    if (k == "config") continue;
    // Repeated --allowed-dir flags replace the file's list rather than extend it.
    if (k == "allowed-dir" && !flag_allowed) {
      c.allowed_dirs.clear();
      flag_allowed = true;
    }
    if (k == "admin-identity" && !flag_admins) {
      c.admin_identities.clear();
      flag_admins = true;
    }
    CANDIES_RETURN_IF_ERROR(Apply(c, k, v, "--"));
    keys.insert(k);
  }
  if (keys.count("device-slots") != 0) {
    for (const char* old_key : {"workers", "device"}) {
      if (keys.count(old_key) != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "device-slots: replaces ", old_key, " (the jobs at once per device); set one or the other"));
      }
    }
  }
  return c;
}

std::vector<DeviceSlotGroup> EffectiveDeviceSlots(const DaemonConfig& c) {
  if (!c.device_slots.empty()) return c.device_slots;
  return {DeviceSlotGroup{c.device, c.workers}};
}

bool IsLoopbackAddress(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8, as four decimal octets.
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (const std::string& p : parts) {
    int v = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

absl::Status ValidateDaemonConfig(const DaemonConfig& c) {
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("tls-cert and tls-key: give both or neither");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    return absl::InvalidArgumentError("tls-client-ca: needs tls-cert and tls-key (mTLS is TLS)");
  }
  if (c.insecure_dev_mode) {
    if (!IsLoopbackAddress(c.listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen: '", c.listen, "' is not a loopback address; insecure-dev-mode only listens "
          "on 127.0.0.0/8, [::1] or localhost"));
    }
    if (!c.metrics_listen.empty() && !IsLoopbackAddress(c.metrics_listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics-listen: '", c.metrics_listen, "' is not a loopback address (insecure-dev-mode)"));
    }
    return absl::OkStatus();
  }
  if (c.token_file.empty() && c.tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "no authentication configured: set token-file (bearer tokens, `candies token add`), "
        "or tls-client-ca with tls-cert/tls-key (mutual TLS), or --insecure-dev-mode for a "
        "loopback-only development daemon (docs/SECURITY.md)");
  }
  return absl::OkStatus();
}

}  // namespace candies::server
