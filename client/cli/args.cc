#include "client/cli/args.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"

namespace candies::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& args,
                                 const std::vector<FlagSpec>& specs) {
  Args out;
  std::map<std::string, const FlagSpec*> by_name;
  for (const FlagSpec& spec : specs) {
    by_name[spec.name] = &spec;
    if (!spec.default_value.empty()) out.defaults_[spec.name] = spec.default_value;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--") || arg == "--") {
      out.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!it->second->takes_value) {
      if (value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      out.values_[name] = "true";
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    out.values_[name] = *value;
  }
  return out;
}

std::string Args::Get(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  if (auto it = defaults_.find(name); it != defaults_.end()) return it->second;
  return "";
}

absl::StatusOr<int64_t> Args::GetInt(const std::string& name) const {
  int64_t v = 0;
  std::string s = Get(name);
  if (!absl::SimpleAtoi(s, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": '", s, "' is not an integer"));
  }
  return v;
}

absl::StatusOr<double> Args::GetDouble(const std::string& name) const {
  double v = 0;
  std::string s = Get(name);
  if (!absl::SimpleAtod(s, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", s, "' is not a number"));
  }
  return v;
}

std::string Args::Usage(const std::string& command, const std::string& synopsis,
                        const std::vector<FlagSpec>& specs) {
  std::string out = absl::StrCat("usage: candies ", command, " ", synopsis, "\n");
  for (const FlagSpec& s : specs) {
    std::string flag = absl::StrCat("--", s.name, s.takes_value ? " V" : "");
    absl::StrAppendFormat(&out, "  %-24s %s", flag, s.help);
    if (!s.default_value.empty()) absl::StrAppend(&out, " [", s.default_value, "]");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace candies::cli
