// Structured log lines on stderr: `ts=... level=... msg="..." key=value ...`.
#pragma once

#include <string>

namespace candies::server {

// `kv` ("job=job-1 state=SUCCEEDED") is appended as is.
void LogLine(const char* level, const std::string& msg, const std::string& kv = "");

}  // namespace candies::server
