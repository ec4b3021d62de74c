#include "server/file_validator.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/sibling_executable.h"

namespace candies::server {
std::vector<std::string> ValidatorArgs(const ValidationConfig& config, const std::string& path) {
  const ReadLimits& l = config.read;
  return {config.validator.empty() ? SiblingExecutable("candies-validate") : config.validator,
          absl::StrCat("--max-elements=", l.max_elements),
          absl::StrCat("--max-element-bytes=", l.max_element_bytes),
          absl::StrCat("--max-total-bytes=", l.max_total_bytes),
          absl::StrCat("--max-string-bytes=", l.max_string_bytes),
          absl::StrCat("--max-group-members=", l.max_group_members),
          absl::StrCat("--max-compression-ratio=", l.max_compression_ratio),
          "--",
          path};
}

absl::Status ParseValidatorArgs(const std::vector<std::string>& args, ReadLimits* limits,
                                std::string* path) {
  bool rest = false;
  for (const std::string& a : args) {
    if (rest || a.empty() || a[0] != '-') {
      if (!path->empty()) return absl::InvalidArgumentError("expected exactly one FILE");
      *path = a;
      continue;
    }
    if (a == "--") {
      rest = true;
      continue;
    }
    std::pair<std::string, std::string> kv = absl::StrSplit(a, absl::MaxSplits('=', 1));
    bool ok = true;
    if (kv.first == "--max-elements") ok = absl::SimpleAtoi(kv.second, &limits->max_elements);
    else if (kv.first == "--max-element-bytes") ok = absl::SimpleAtoi(kv.second, &limits->max_element_bytes);
    else if (kv.first == "--max-total-bytes") ok = absl::SimpleAtoi(kv.second, &limits->max_total_bytes);
    else if (kv.first == "--max-string-bytes") ok = absl::SimpleAtoi(kv.second, &limits->max_string_bytes);
    else if (kv.first == "--max-group-members") ok = absl::SimpleAtoi(kv.second, &limits->max_group_members);
    else if (kv.first == "--max-compression-ratio") ok = absl::SimpleAtod(kv.second, &limits->max_compression_ratio);
    else return absl::InvalidArgumentError(absl::StrCat(kv.first, ": unknown flag"));
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(kv.first, ": bad number '", kv.second, "'"));
  }
  if (path->empty()) return absl::InvalidArgumentError("expected exactly one FILE");
  return absl::OkStatus();
}

absl::StatusOr<ValidatedFile> ValidateInSandbox(const std::string& path,
                                                const ValidationConfig& config) {
  absl::StatusOr<SandboxResult> r = RunSandboxed(ValidatorArgs(config, path), config.sandbox);
  if (!r.ok()) return r.status();
  if (r->ok()) {
    // "ok <n_obs> <n_vars>"
    std::vector<std::string> f = absl::StrSplit(r->output, ' ', absl::SkipWhitespace());
    ValidatedFile v;
    if (f.size() == 3 && f[0] == "ok" && absl::SimpleAtoi(f[1], &v.n_obs) &&
        absl::SimpleAtoi(f[2], &v.n_vars)) {
      return v;
    }
    return absl::InternalError(absl::StrCat("validator: unexpected output '", r->output, "'"));
  }
  if (r->exit_code == 1 && r->signal == 0 && !r->timed_out && !r->output.empty()) {
    std::string msg = r->output;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return absl::InvalidArgumentError(msg);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": /: the file's parse ", r->Describe(),
      " in the validation sandbox (corrupt file, or beyond validate-* limits)"));
}

}  // namespace candies::server
