#include "server/config.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace candies::server {
namespace {

absl::Status Apply(DaemonConfig& c, const std::string& key, const std::string& value,
                   const std::string& where) {
  auto num = [&](auto* out) -> absl::Status {
    if (!absl::SimpleAtoi(value, out) || *out <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, ": '", value, "' is not a positive integer"));
    }
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
  } else if (key == "device") {
    c.device = value;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(where, "unknown key '", key, "'"));
  }
  return absl::OkStatus();
}

absl::Status ApplyFile(DaemonConfig& c, const std::string& path) {
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
  }
  return absl::OkStatus();
}

}  // namespace

std::string DaemonUsage() {
  return "usage: candiesd [--listen 127.0.0.1:50051] [--metrics-listen 127.0.0.1:9464]\n"
         "  [--data-dir ./candies-data] [--config FILE] [--workers 1] [--max-queue 1000]\n"
         "  [--max-upload-bytes 4294967296] [--allowed-dir DIR]... [--device auto]\n"
         "  [--max-queued-per-owner 100] [--max-dataset-bytes-per-owner 68719476736]\n"
         "  [--max-obs-columns 64] [--model-memory-budget 4294967296]\n"
         "Every key also works in the --config file as `key = value` (docs/SERVICE.md).\n";
}

absl::StatusOr<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args) {
  // Split into key/value pairs first so that --config applies before the flags.
  std::vector<std::pair<std::string, std::string>> kv;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "'"));
    const size_t eq = a.find('=');
    if (eq != std::string::npos) {
      kv.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      kv.emplace_back(a.substr(2), args[++i]);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(a, ": missing value"));
    }
  }
  DaemonConfig c;
  for (const auto& [k, v] : kv) {
    if (k == "config") CANDIES_RETURN_IF_ERROR(ApplyFile(c, v));
  }
  bool flag_allowed = false;
  for (const auto& [k, v] : kv) {
    if (k == "config") continue;
    // Repeated --allowed-dir flags replace the file's list rather than extend it.
    if (k == "allowed-dir" && !flag_allowed) {
      c.allowed_dirs.clear();
      flag_allowed = true;
    }
    CANDIES_RETURN_IF_ERROR(Apply(c, k, v, "--"));
  }
  return c;
}

}  // namespace candies::server
