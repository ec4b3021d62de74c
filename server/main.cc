// candiesd: the CANDIES job server (see docs/SERVICE.md).
#include <cstdio>
#include <string>
#include <vector>

#include "server/candies_backend.h"
#include "server/config.h"
#include "server/daemon.h"
#include "server/process_backend.h"
#include "server/slurm_backend.h"

namespace {

candies::server::SlurmBackendOptions SlurmOptions(const candies::server::DaemonConfig& c) {
  candies::server::SlurmBackendOptions o;
  o.work_dir = c.data_dir + "/slurm";
  o.worker = c.worker;
  o.partition = c.slurm_partition;
  o.account = c.slurm_account;
  o.time_limit = c.slurm_time_limit;
  o.memory = c.slurm_memory;
  o.gres = c.slurm_gres;
  o.cpus_per_task = c.slurm_cpus_per_task;
  o.poll_milliseconds = c.slurm_poll_milliseconds;
  o.sbatch = c.slurm_sbatch;
  o.scontrol = c.slurm_scontrol;
  o.scancel = c.slurm_scancel;
  o.max_attempts = c.max_attempts;
  o.timeout_seconds = c.worker_timeout_seconds;
  o.command_timeout_seconds = c.slurm_command_timeout_seconds;
  o.unreachable_seconds = c.slurm_unreachable_seconds;
  o.result_wait_seconds = c.slurm_result_wait_seconds;
  return o;
}

}  // namespace

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
  candies::server::SlurmBackend slurm(SlurmOptions(*config), &backend);
  candies::server::JobBackend* executor = &process;
  if (config->executor == "thread") executor = &backend;
  if (config->executor == "slurm") executor = &slurm;
  return candies::server::RunDaemon(*config, executor);
}
