// The bearer-token file: one line per token, `name role created revoked salt
// hash` (space separated; '#' comments). Only a salted SHA-256 of each token
// is stored: hash = SHA-256(salt || token) with a random 16-byte salt per
// token. Tokens are 32 random bytes (hex, "cnd_" prefix), so a fast hash is
// enough: there is nothing to guess by brute force, unlike passwords.
// Written atomically (temp file + rename), mode 0600.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace candies::server {

struct TokenEntry {
  std::string name;  // the identity: [A-Za-z0-9._@-], 1..64 characters
  std::string role;  // "user" | "admin"
  int64_t created_unix = 0;
  bool revoked = false;
  std::string salt_hex;  // 32 hex digits
  std::string hash_hex;  // 64 hex digits
};

// Names that may own objects and appear in logs unquoted.
bool ValidIdentityName(std::string_view name);

// Parses the file; errors name the line. A missing file is NotFound.
absl::StatusOr<std::vector<TokenEntry>> ReadTokenFile(const std::string& path);
// Replaces the file atomically, mode 0600.
absl::Status WriteTokenFile(const std::string& path, const std::vector<TokenEntry>& entries);

// A new random token and its entry (salt and hash filled in).
struct NewTokenResult {
  std::string token;
  TokenEntry entry;
};
absl::StatusOr<NewTokenResult> MakeToken(const std::string& name, const std::string& role);

// True when `token` hashes to entry.hash_hex under entry.salt_hex (constant time).
bool TokenMatches(const TokenEntry& entry, std::string_view token);

}  // namespace candies::server
