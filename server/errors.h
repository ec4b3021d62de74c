// The daemon's error convention: errors name the offending request field.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace candies::server {

// INVALID_ARGUMENT "<field>: <problem>".
inline absl::Status Invalid(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

}  // namespace candies::server
