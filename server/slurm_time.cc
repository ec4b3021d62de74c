#include "server/slurm_time.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace candies::server {
namespace {

bool Field(absl::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != absl::string_view::npos) {
    return false;
  }
  return absl::SimpleAtoi(s, out);
}

}  // namespace

absl::StatusOr<int64_t> ParseSlurmTime(absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a Slurm time (MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"));
  };
  int64_t days = 0;
  absl::string_view rest = text;
  const size_t dash = text.find('-');
  const bool has_days = dash != absl::string_view::npos;
  if (has_days) {
    if (!Field(text.substr(0, dash), &days)) return bad();
    rest = text.substr(dash + 1);
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(rest, ':');
  std::vector<int64_t> v(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!Field(parts[i], &v[i])) return bad();
  }
  int64_t seconds = 0;
  if (has_days) {
    // D-HH, D-HH:MM, D-HH:MM:SS
    if (parts.size() > 3) return bad();
    seconds = v[0] * 3600 + (parts.size() > 1 ? v[1] * 60 : 0) + (parts.size() > 2 ? v[2] : 0);
  } else if (parts.size() == 1) {
    seconds = v[0] * 60;
  } else if (parts.size() == 2) {
    seconds = v[0] * 60 + v[1];
  } else if (parts.size() == 3) {
    seconds = v[0] * 3600 + v[1] * 60 + v[2];
  } else {
    return bad();
  }
  return days * 86400 + seconds;
}

std::string SlurmTimeForJob(const std::string& configured, double remaining_seconds) {
  // Past about 190 years a deadline is no limit worth passing on.
  if (remaining_seconds < 0 || !(remaining_seconds < 6e9)) return configured;
  const int64_t minutes = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(remaining_seconds / 60)));
  if (!configured.empty()) {
    absl::StatusOr<int64_t> limit = ParseSlurmTime(configured);
    if (limit.ok() && *limit <= minutes * 60) return configured;
  }
  return absl::StrCat(minutes);
}

}  // namespace candies::server
