// candiesd's lifetime: open the store, start the gRPC server (health checks,
// reflection, the Candies service) and the metrics exposer, wait for
// SIGTERM/SIGINT, shut down gracefully. Returns the process exit code.
#pragma once

#include "server/backend.h"
#include "server/config.h"

namespace candies::server {

int RunDaemon(const DaemonConfig& config, JobBackend* backend);

// One `ts=... level=... msg="..."` line on stderr; `kv` is appended as is.
void LogLine(const char* level, const std::string& msg, const std::string& kv = "");

}  // namespace candies::server
