// A minimal HTTP/1.1 endpoint for Prometheus scrapes: GET /metrics answers the
// text exposition format of a prometheus-cpp Registry; anything else is 404.
//
// Why not prometheus::Exposer: its CivetWeb server creates its threads with a
// fixed 100 KiB stack (CivetWeb's build default), and in a process that links
// LibTorch the static TLS of LibTorch's dependencies (c10, OpenCV, ...) does
// not fit in that, so pthread_create fails and Exposer throws "null context
// when constructing CivetServer". This server runs one thread with a default
// stack and handles one short request at a time, which is all a scraper needs.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace candies::server {

class MetricsHttpServer {
 public:
  // Listens on "host:port" (port 0 = pick a free one); returns the bound
  // "host:port". Only IPv4 literals and "localhost"/"0.0.0.0" hosts.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);
  ~MetricsHttpServer();  // stops the thread and closes the socket

  const std::string& address() const { return address_; }

 private:
  MetricsHttpServer() = default;
  void Loop();
  void Serve(int fd);

  std::shared_ptr<prometheus::Registry> registry_;
  std::string address_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace candies::server
