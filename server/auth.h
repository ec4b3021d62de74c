// Who is calling: every RPC of the Candies service starts with
// Authenticator::Authenticate, which returns the caller's Principal (its name
// is the owner of everything the call creates) or UNAUTHENTICATED.
//
// In order:
//  1. `authorization: Bearer <token>` metadata: checked against the token file
//     (server/token_file.h). A token that is present but wrong or revoked is
//     refused, whatever else the call carries.
//  2. A client certificate verified by the TLS layer (mTLS, tls-client-ca):
//     the identity is the certificate's subject CN, or without a CN its first
//     subject alternative name; role admin when listed in admin-identity.
//  3. insecure-dev-mode only: identity from `x-candies-owner` (default "dev"),
//     role admin. The daemon then listens on loopback only.
//
// The token file is re-read at the next call after it changes (inode, size or
// modification time), so `candies token revoke` takes effect without a restart.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/token_file.h"

namespace grpc {
class ServerContext;
}

namespace candies::server {

enum class Role { kUser, kAdmin };
const char* RoleName(Role r);

struct Principal {
  std::string name;
  Role role = Role::kUser;
  bool admin() const { return role == Role::kAdmin; }
  // May `who` see an object owned by `owner`?
  bool Sees(const std::string& owner) const { return admin() || owner == name; }
};

// What a caller presented, whatever the transport (gRPC metadata and TLS
// peer, or HTTP headers and TLS peer).
struct Credentials {
  std::string authorization;         // "Bearer <token>", or "" when absent
  std::string certificate_identity;  // verified client certificate's CN/SAN, or ""
  std::string dev_owner;             // x-candies-owner (insecure-dev-mode only), or ""
};

struct AuthOptions {
  std::string token_file;  // "" = bearer tokens off
  bool mtls = false;       // client certificates are verified (tls-client-ca)
  std::vector<std::string> admin_identities;  // certificate identities with role admin
  bool insecure_dev_mode = false;
};

class Authenticator {
 public:
  explicit Authenticator(AuthOptions options) : options_(std::move(options)) {}

  absl::StatusOr<Principal> Authenticate(const grpc::ServerContext& ctx);
  // The same decision for any transport (the HTTP/JSON API uses it directly).
  absl::StatusOr<Principal> Resolve(const Credentials& c);

  // The parts, without gRPC (for tests).
  absl::StatusOr<Principal> FromToken(std::string_view token);
  absl::StatusOr<Principal> FromCertificate(const std::string& identity) const;

 private:
  // Re-reads the token file when it changed on disk. On a read error the
  // previous entries are dropped (fail closed) and the error is kept.
  void ReloadIfChangedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AuthOptions options_;
  absl::Mutex mu_;
  std::vector<TokenEntry> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Status load_error_ ABSL_GUARDED_BY(mu_);
  ino_t inode_ ABSL_GUARDED_BY(mu_) = 0;
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
  struct timespec mtime_ ABSL_GUARDED_BY(mu_) = {0, 0};
};

}  // namespace candies::server
