// candiesd's lifetime: open the store, start the gRPC server (health checks,
// reflection, the Candies service) and the metrics exposer, wait for
// SIGTERM/SIGINT, shut down gracefully. Returns the process exit code.
#pragma once

#include "server/backend.h"
#include "server/config.h"
#include "server/log.h"

namespace candies::server {

int RunDaemon(const DaemonConfig& config, JobBackend* backend);

}  // namespace candies::server
