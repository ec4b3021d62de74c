// A small, strict parser for `--flag value`, `--flag=value` and `--switch`
// arguments. Unknown flags and missing values are errors naming the flag: a
// mistyped flag must never be silently ignored in a scientific run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace candies::cli {

struct FlagSpec {
  std::string name;        // without the leading "--"
  bool takes_value = true;  // false: a boolean switch
  std::string help;
  std::string default_value;  // shown in help; returned by Get() when unset
};

class Args {
 public:
  // Parses `args` against `specs`. Positional arguments are collected in order.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& args,
                                    const std::vector<FlagSpec>& specs);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // The value given, or the spec's default.
  std::string Get(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name) const;
  absl::StatusOr<double> GetDouble(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

  static std::string Usage(const std::string& command, const std::string& synopsis,
                           const std::vector<FlagSpec>& specs);

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> defaults_;
  std::vector<std::string> positional_;
};

}  // namespace candies::cli
