// candiesd: the CANDIES job server (see docs/SERVICE.md).
#include <cstdio>
#include <string>
#include <vector>

#include "server/candies_backend.h"
#include "server/config.h"
#include "server/daemon.h"
#include "server/process_backend.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(candies::server::DaemonUsage().c_str(), stdout);
      return 0;
    }
  }
  auto config = candies::server::ParseDaemonConfig(args);
  if (!config.ok()) {
    std::fprintf(stderr, "candiesd: %s\n%s", std::string(config.status().message()).c_str(),
                 candies::server::DaemonUsage().c_str());
    return 2;
  }
  // In-process: loads the registry's models; runs jobs only with executor = thread.
  candies::server::CandiesBackend backend(config->device);
  candies::server::ProcessBackendOptions workers;
  workers.worker = config->worker;
  workers.max_memory_bytes = config->worker_max_memory_bytes;
  workers.timeout_seconds = config->worker_timeout_seconds;
  candies::server::ProcessBackend process(workers, &backend);
  return candies::server::RunDaemon(
      *config, config->executor == "thread" ? static_cast<candies::server::JobBackend*>(&backend)
                                            : &process);
}
