#include "server/log.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace candies::server {
namespace {

bool Bare(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '/' || c == '@' ||
         c == '+' || c == '-';
}

std::string Quoted(std::string_view v) {
  std::string out = "\"";
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace

std::string LogValue(std::string_view value) {
  if (value.empty()) return "\"\"";
  for (char c : value) {
    if (!Bare(static_cast<unsigned char>(c))) return Quoted(value);
  }
  return std::string(value);
}

std::string FormatLogLine(const char* level, std::string_view msg,
                          std::initializer_list<LogField> fields) {
  std::string line = absl::StrFormat("level=%s msg=%s", level, Quoted(msg));
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += LogValue(key);
    line += '=';
    line += LogValue(value);
  }
  return line;
}

void LogLine(const char* level, std::string_view msg, std::initializer_list<LogField> fields) {
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  const std::string line = FormatLogLine(level, msg, fields);
  // One fprintf per line: lines from worker threads do not interleave.
  std::fprintf(stderr, "ts=%s %s\n", ts.c_str(), line.c_str());
}

}  // namespace candies::server
