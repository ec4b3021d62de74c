#include "server/token_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace candies::server {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  return absl::BytesToHexString(std::string(reinterpret_cast<const char*>(p), n));
}

bool IsHex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string HashHex(const std::string& salt_hex, std::string_view token) {
  const std::string salt = absl::HexStringToBytes(salt_hex);
  const std::string input = salt + std::string(token);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &n, EVP_sha256(), nullptr) != 1) return "";
  return Hex(digest, n);
}

}  // namespace

bool ValidIdentityName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::vector<TokenEntry>> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("token-file: cannot read ", path));
  std::vector<TokenEntry> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (f.empty()) continue;
    const std::string where = absl::StrCat("token-file ", path, ":", n, ": ");
    if (f.size() != 6) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "want 6 fields (name role created revoked salt hash), got ", f.size()));
    }
    TokenEntry e;
    e.name = f[0];
    e.role = f[1];
    if (!ValidIdentityName(e.name)) return absl::InvalidArgumentError(absl::StrCat(where, "bad name"));
    if (e.role != "user" && e.role != "admin") {
      return absl::InvalidArgumentError(absl::StrCat(where, "role must be user or admin"));
    }
    if (!absl::SimpleAtoi(f[2], &e.created_unix)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "created is not a number"));
    }
    if (f[3] != "0" && f[3] != "1") {
      return absl::InvalidArgumentError(absl::StrCat(where, "revoked must be 0 or 1"));
    }
    e.revoked = f[3] == "1";
    e.salt_hex = f[4];
    e.hash_hex = absl::AsciiStrToLower(f[5]);
    e.salt_hex = absl::AsciiStrToLower(e.salt_hex);
    if (!IsHex(e.salt_hex, 32)) return absl::InvalidArgumentError(absl::StrCat(where, "salt is not 32 hex digits"));
    if (!IsHex(e.hash_hex, 64)) return absl::InvalidArgumentError(absl::StrCat(where, "hash is not 64 hex digits"));
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status WriteTokenFile(const std::string& path, const std::vector<TokenEntry>& entries) {
  std::ostringstream s;
  s << "# candiesd tokens: name role created revoked salt sha256(salt||token)\n";
  for (const TokenEntry& e : entries) {
    s << e.name << ' ' << e.role << ' ' << e.created_unix << ' ' << (e.revoked ? 1 : 0) << ' '
      << e.salt_hex << ' ' << e.hash_hex << '\n';
  }
  const std::string text = s.str();
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("token file: cannot create ", tmp));
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("token file: cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<NewTokenResult> MakeToken(const std::string& name, const std::string& role) {
  if (!ValidIdentityName(name)) {
    return absl::InvalidArgumentError(
        "name: want 1..64 characters from A-Z a-z 0-9 . _ @ -");
  }
  if (role != "user" && role != "admin") {
    return absl::InvalidArgumentError(absl::StrCat("role: '", role, "' is not user|admin"));
  }
  unsigned char secret[32], salt[16];
  if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(salt, sizeof(salt)) != 1) {
    return absl::InternalError("token: the random generator failed");
  }
  NewTokenResult r;
  r.token = absl::StrCat("cnd_", Hex(secret, sizeof(secret)));
  r.entry.name = name;
  r.entry.role = role;
  r.entry.created_unix = absl::ToUnixSeconds(absl::Now());
  r.entry.salt_hex = Hex(salt, sizeof(salt));
  r.entry.hash_hex = HashHex(r.entry.salt_hex, r.token);
  return r;
}

bool TokenMatches(const TokenEntry& entry, std::string_view token) {
  const std::string got = HashHex(entry.salt_hex, token);
  return !got.empty() && got.size() == entry.hash_hex.size() &&
         CRYPTO_memcmp(got.data(), entry.hash_hex.data(), got.size()) == 0;
}

}  // namespace candies::server
