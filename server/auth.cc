#include "server/auth.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace candies::server {
namespace {

// One message for every refused credential: which part was wrong is not told.
absl::Status Refused() {
  return absl::UnauthenticatedError("authentication failed: the token or certificate is not valid");
}

std::string Lookup(const grpc::ServerContext& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

const char* RoleName(Role r) { return r == Role::kAdmin ? "admin" : "user"; }

void Authenticator::ReloadIfChangedLocked() {
  struct stat st;
  if (::stat(options_.token_file.c_str(), &st) != 0) {
    if (load_error_.ok() || size_ != -1) {
      LogLine("error", "token file unreadable; refusing all tokens", {{"path", options_.token_file}});
    }
    tokens_.clear();
    size_ = -1;
    load_error_ = absl::UnavailableError("token file unreadable");
    return;
  }
  if (st.st_ino == inode_ && st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec) {
    return;
  }
  inode_ = st.st_ino;
  size_ = st.st_size;
  mtime_ = st.st_mtim;
  auto entries = ReadTokenFile(options_.token_file);
  if (!entries.ok()) {
    LogLine("error", "token file invalid; refusing all tokens",
            {{"path", options_.token_file}, {"error", entries.status().ToString()}});
    tokens_.clear();
    load_error_ = entries.status();
    return;
  }
  tokens_ = std::move(*entries);
  load_error_ = absl::OkStatus();
  LogLine("info", "token file loaded",
          {{"path", options_.token_file}, {"entries", absl::StrCat(tokens_.size())}});
}

absl::StatusOr<Principal> Authenticator::FromToken(std::string_view token) {
  if (options_.token_file.empty() || token.empty()) return Refused();
  absl::MutexLock lock(&mu_);
  ReloadIfChangedLocked();
  // Every entry is hashed and compared, so the time taken does not depend on
  // which entry (if any) matches.
  const TokenEntry* match = nullptr;
  for (const TokenEntry& e : tokens_) {
    if (TokenMatches(e, token) && match == nullptr) match = &e;
  }
  if (match == nullptr || match->revoked) return Refused();
  return Principal{match->name, match->role == "admin" ? Role::kAdmin : Role::kUser};
}

absl::StatusOr<Principal> Authenticator::FromCertificate(const std::string& identity) const {
  if (!options_.mtls || !ValidIdentityName(identity)) return Refused();
  const bool admin = std::find(options_.admin_identities.begin(), options_.admin_identities.end(),
                               identity) != options_.admin_identities.end();
  return Principal{identity, admin ? Role::kAdmin : Role::kUser};
}

absl::StatusOr<Principal> Authenticator::Authenticate(const grpc::ServerContext& ctx) {
  Credentials c;
  c.authorization = Lookup(ctx, "authorization");
  if (options_.mtls) {
    auto auth = ctx.auth_context();
    if (auth != nullptr && auth->IsPeerAuthenticated()) {
      std::vector<grpc::string_ref> ids = auth->FindPropertyValues("x509_common_name");
      if (ids.empty()) ids = auth->FindPropertyValues("x509_subject_alternative_name");
      if (!ids.empty()) c.certificate_identity.assign(ids[0].data(), ids[0].size());
    }
  }
  c.dev_owner = Lookup(ctx, "x-candies-owner");
  return Resolve(c);
}

absl::StatusOr<Principal> Authenticator::Resolve(const Credentials& c) {
  if (!c.authorization.empty()) {
    const std::string bearer = "Bearer ";
    if (c.authorization.rfind(bearer, 0) != 0) return Refused();
    return FromToken(std::string_view(c.authorization).substr(bearer.size()));
  }
  if (options_.mtls && !c.certificate_identity.empty()) {
    return FromCertificate(c.certificate_identity);
  }
  if (options_.insecure_dev_mode) {
    const std::string owner = c.dev_owner.empty() ? "dev" : c.dev_owner;
    if (!ValidIdentityName(owner)) {
      return absl::InvalidArgumentError("x-candies-owner: want 1..64 characters from A-Z a-z 0-9 . _ @ -");
    }
    return Principal{owner, Role::kAdmin};
  }
  return absl::UnauthenticatedError(
      "no credential: send `authorization: Bearer <token>` (candies --token) or a client "
      "certificate (candies --tls-cert/--tls-key)");
}

}  // namespace candies::server
