// `candies token add|list|revoke`: manages candiesd's bearer-token file
// (server/token_file.h; docs/SECURITY.md). Run it on the server, as the user
// that owns the file. `add` prints the new token once; only its salted hash is
// stored. candiesd re-reads the file when it changes, so a revoke takes effect
// at the caller's next request, without a restart.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/cli/args.h"
#include "client/cli/command.h"
#include "server/token_file.h"

namespace candies::cli {
namespace {

constexpr const char* kSynopsis = "add NAME --role user|admin --file F | list --file F | revoke NAME --file F";

int Fail(const std::string& msg) {
  std::fprintf(stderr, "candies token: %s\n", msg.c_str());
  return 1;
}

int RunToken(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"file", true, "the token file (candiesd's token-file)", ""},
      {"role", true, "add: user | admin", "user"},
      {"help", false, "show this help", ""},
  };
  auto args = Args::Parse(argv, specs);
  if (!args.ok()) return Fail(std::string(args.status().message()));
  const auto& pos = args->positional();
  if (args->Has("help") || pos.empty()) {
    std::fputs(Args::Usage("token", kSynopsis, specs).c_str(), stderr);
    return args->Has("help") ? 0 : 1;
  }
  const std::string file = args->Get("file");
  if (file.empty()) return Fail("--file: required (candiesd's token-file)");
  const std::string& action = pos[0];
  std::vector<server::TokenEntry> entries;
  auto read = server::ReadTokenFile(file);
  if (read.ok()) {
    entries = std::move(*read);
  } else if (!absl::IsNotFound(read.status()) || action != "add") {
    return Fail(std::string(read.status().message()));
  }
  if (action == "list") {
    if (pos.size() != 1) return Fail(kSynopsis);
    for (const auto& e : entries) {
      std::printf("%s %s %s%s\n", e.name.c_str(), e.role.c_str(),
                  absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(e.created_unix),
                                   absl::UTCTimeZone()).c_str(),
                  e.revoked ? " revoked" : "");
    }
    return 0;
  }
  if (pos.size() != 2) return Fail(kSynopsis);
  const std::string& name = pos[1];
  if (action == "add") {
    for (const auto& e : entries) {
      if (e.name == name && !e.revoked) {
        return Fail("name: " + name + " already has a token (revoke it first)");
      }
    }
    auto made = server::MakeToken(name, args->Get("role"));
    if (!made.ok()) return Fail(std::string(made.status().message()));
    const std::filesystem::path parent = std::filesystem::path(file).parent_path();
    if (!parent.empty() && !std::filesystem::exists(parent)) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      std::filesystem::permissions(parent, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
      if (ec) return Fail("--file: cannot create " + parent.string() + ": " + ec.message());
    }
    entries.push_back(made->entry);
    absl::Status s = server::WriteTokenFile(file, entries);
    if (!s.ok()) return Fail(std::string(s.message()));
    std::printf("%s\n", made->token.c_str());
    std::fprintf(stderr, "token for %s (%s) added to %s; it is shown only now\n", name.c_str(),
                 made->entry.role.c_str(), file.c_str());
    return 0;
  }
  if (action == "revoke") {
    int n = 0;
    for (auto& e : entries) {
      if (e.name == name && !e.revoked) {
        e.revoked = true;
        ++n;
      }
    }
    if (n == 0) return Fail("name: no active token for " + name);
    absl::Status s = server::WriteTokenFile(file, entries);
    if (!s.ok()) return Fail(std::string(s.message()));
    std::fprintf(stderr, "revoked %d token(s) of %s\n", n, name.c_str());
    return 0;
  }
  return Fail(kSynopsis);
}

}  // namespace

CANDIES_CLI_COMMAND(token, "token", "manage candiesd bearer tokens (add, list, revoke)", RunToken);

}  // namespace candies::cli
