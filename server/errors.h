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

// NOT_FOUND "<kind> <id> not found": the one answer for a missing object and
// for another user's (its existence is not revealed).
inline absl::Status NotFound(const char* kind, const std::string& id) {
  return absl::NotFoundError(absl::StrCat(kind, " ", id, " not found"));
}

}  // namespace candies::server
