// The daemon's HTTP server: GET /metrics answers the text exposition format
// of a prometheus-cpp Registry; more routes (the JSON API, server/http_api.h)
// are mounted by their owners when it starts listening; anything else is 404.
//
// cpp-httplib (Debian's libcpp-httplib, built with OpenSSL): a pool of
// `threads` workers, each request bounded by read/write timeouts, one request
// per connection. HTTPS when a certificate and key are given.
//
// Why not prometheus::Exposer: its CivetWeb server creates its threads with a
// fixed 100 KiB stack, and in a process that links LibTorch the static TLS of
// LibTorch's dependencies does not fit in that, so pthread_create fails and
// Exposer throws. httplib's threads have the default stack.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace candies::server {

struct MetricsHttpOptions {
  int threads = 4;                // concurrent scrapes (metrics-threads)
  int read_timeout_seconds = 5;   // each read of a request (metrics-read-timeout-seconds)
  int write_timeout_seconds = 5;  // each write of an answer (metrics-write-timeout-seconds)
  std::string tls_cert, tls_key;  // both set: HTTPS (tls-cert, tls-key)
  // With HTTPS: client certificates from this CA are requested and verified
  // (tls-client-ca); not required, as on gRPC (token clients have none).
  std::string tls_client_ca;
  int64_t max_body_bytes = 4096;  // request bodies; nothing here reads one (http-max-body-bytes)
};

// What is added when the server starts listening.
struct HttpRoutes {
  std::function<void(httplib::Server&)> mount;  // more routes
  // When set, /metrics answers only when it returns true; otherwise the
  // response it filled in (metrics-require-token).
  std::function<bool(const httplib::Request&, httplib::Response&)> metrics_guard;
};

class MetricsHttpServer {
 public:
  // Listens on "host:port" (port 0 = pick a free one); returns the bound
  // "host:port". Errors name metrics-listen (or tls-cert).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry,
      const MetricsHttpOptions& options = {}, const HttpRoutes& routes = {});
  // Start in two steps: Bind takes the port (so that a taken port fails the
  // daemon before anything else starts), Listen adds the routes and serves.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Bind(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry,
      const MetricsHttpOptions& options = {});
  void Listen(const HttpRoutes& routes = {});
  ~MetricsHttpServer();  // stops serving and joins the threads

  const std::string& address() const { return address_; }

 private:
  MetricsHttpServer() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<httplib::Server> http_;
  std::string address_;
  std::thread thread_;
};

}  // namespace candies::server
