#include "server/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/log.h"
#include "server/service.h"

namespace candies::server {

int RunDaemon(const DaemonConfig& config, JobBackend* backend) {
  // Block the stop signals in every thread (threads inherit the mask); the
  // main thread collects them with sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto store = Store::Open(config.data_dir);
  if (!store.ok()) {
    LogLine("error", "cannot open store", absl::StrCat("error=\"", store.status().ToString(), "\""));
    return 1;
  }
  if ((*store)->requeued_on_open() > 0) {
    LogLine("info", "requeued interrupted jobs", absl::StrCat("count=", (*store)->requeued_on_open()));
  }
  Metrics metrics;
  if (absl::Status s = metrics.Serve(config.metrics_listen); !s.ok()) {
    LogLine("error", "cannot serve metrics", absl::StrCat("error=\"", s.ToString(), "\""));
    return 1;
  }
  if (!metrics.address().empty()) {
    // Before candiesd.port: whoever sees the gRPC port also finds this file.
    const std::string path = (std::filesystem::path(config.data_dir) / "candiesd.metrics").string();
    std::ofstream(path + ".tmp") << metrics.address() << "\n";
    std::error_code ec;
    std::filesystem::rename(path + ".tmp", path, ec);
  }
  ServiceOptions opt;
  opt.max_upload_bytes = config.max_upload_bytes;
  opt.allowed_dirs = config.allowed_dirs;
  opt.device = config.device;
  opt.scheduler.workers = config.workers;
  opt.scheduler.max_queue = config.max_queue;
  opt.max_queued_per_owner = config.max_queued_per_owner;
  opt.max_dataset_bytes_per_owner = config.max_dataset_bytes_per_owner;
  opt.max_obs_columns = config.max_obs_columns;
  opt.model_memory_budget = config.model_memory_budget;
  CandiesService service(opt, store->get(), backend, &metrics);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &port);
  // Uploads arrive in row blocks; allow messages up to 64 MiB per block.
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    LogLine("error", "cannot listen", absl::StrCat("listen=", config.listen));
    return 1;
  }
  const std::string host = config.listen.substr(0, config.listen.rfind(':'));
  const std::string address = absl::StrCat(host, ":", port);
  {
    const std::string path = (std::filesystem::path(config.data_dir) / "candiesd.port").string();
    std::ofstream(path + ".tmp") << address << "\n";
    std::error_code ec;
    std::filesystem::rename(path + ".tmp", path, ec);
  }
  std::printf("candiesd listening on %s\n", address.c_str());
  if (!metrics.address().empty()) {
    std::printf("candiesd metrics on http://%s/metrics\n", metrics.address().c_str());
  }
  std::fflush(stdout);
  LogLine("info", "started",
          absl::StrCat("listen=", address, " metrics=", metrics.address(), " data_dir=",
                       config.data_dir, " workers=", config.workers));

  int sig = 0;
  sigwait(&stop, &sig);
  LogLine("info", "stopping", absl::StrCat("signal=", sig));
  // Workers first (interrupted jobs stay RUNNING and are requeued on the next
  // start), which also ends open WatchJob streams; then in-flight RPCs.
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  LogLine("info", "stopped");
  return 0;
}

}  // namespace candies::server
