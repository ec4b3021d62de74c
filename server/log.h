// Structured log lines on stderr: `ts=... level=... msg="..." key=value ...`.
// Every value is escaped: one left bare only when it is made of
// [A-Za-z0-9._:/@+-]; otherwise it is quoted, with `"` and `\` backslashed and
// control characters (newlines included) written as \n, \r, \t or \xHH. So a
// client-chosen string can never start a line of its own or forge a key.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace candies::server {

using LogField = std::pair<std::string_view, std::string_view>;

// `value` as it appears after `key=`.
std::string LogValue(std::string_view value);

// The line without the timestamp, for tests: `level=... msg="..." k=v ...`.
std::string FormatLogLine(const char* level, std::string_view msg,
                          std::initializer_list<LogField> fields = {});

void LogLine(const char* level, std::string_view msg, std::initializer_list<LogField> fields = {});

}  // namespace candies::server
