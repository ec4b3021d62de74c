#include "server/log.h"

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace candies::server {

void LogLine(const char* level, const std::string& msg, const std::string& kv) {
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  // One fprintf per line: lines from worker threads do not interleave.
  std::fprintf(stderr, "ts=%s level=%s msg=\"%s\"%s%s\n", ts.c_str(), level, msg.c_str(),
               kv.empty() ? "" : " ", kv.c_str());
}

}  // namespace candies::server
