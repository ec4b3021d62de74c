#include "server/metrics_http.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace candies::server {
namespace {

// HTTPS that also requests client certificates from `ca` and verifies them:
// a certificate from another CA fails the handshake, none at all is allowed
// (the request then needs a token).
std::unique_ptr<httplib::Server> MutualTlsServer(const MetricsHttpOptions& o) {
  return std::make_unique<httplib::SSLServer>([&o](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, o.tls_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(&ctx, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(&ctx) != 1 ||
        SSL_CTX_load_verify_locations(&ctx, o.tls_client_ca.c_str(), nullptr) != 1) {
      return false;
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.tls_client_ca.c_str())) {
      SSL_CTX_set_client_CA_list(&ctx, names);
    }
    static const unsigned char kContext[] = "candiesd";  // needed to resume verified sessions
    SSL_CTX_set_session_id_context(&ctx, kContext, sizeof(kContext) - 1);
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
    return true;
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry,
    const MetricsHttpOptions& options, const HttpRoutes& routes) {
  auto s = Bind(address, std::move(registry), options);
  if (s.ok()) (*s)->Listen(routes);
  return s;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Bind(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry,
    const MetricsHttpOptions& options) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics-listen: '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->registry_ = std::move(registry);
  if (!options.tls_cert.empty()) {
    s->http_ = options.tls_client_ca.empty()
                   ? std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str())
                   : MutualTlsServer(options);
    if (!s->http_->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tls-cert/tls-key/tls-client-ca: cannot load ", options.tls_cert, ", ", options.tls_key,
          options.tls_client_ca.empty() ? "" : " or " + options.tls_client_ca, " for the HTTP server"));
    }
  } else {
    s->http_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *s->http_;
  const int threads = std::max(1, options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_read_timeout(options.read_timeout_seconds, 0);
  http.set_write_timeout(options.write_timeout_seconds, 0);
  http.set_keep_alive_max_count(1);
  http.set_payload_max_length(static_cast<size_t>(std::max<int64_t>(0, options.max_body_bytes)));
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // process bind the same port and take scrapes: SO_REUSEADDR only.
  http.set_socket_options([](int sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });  // a scrape is one request; free the worker after it
  int bound = port;
  if (port == 0) {
    bound = http.bind_to_any_port(host);
    if (bound <= 0) bound = -1;
  } else if (!http.bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound < 0) {
    return absl::UnavailableError(absl::StrCat("metrics-listen: cannot listen on ", address));
  }
  s->address_ = absl::StrCat(address.substr(0, colon), ":", bound);
  if (address.substr(0, colon).empty()) s->address_ = absl::StrCat("0.0.0.0:", bound);
  return s;
}

void MetricsHttpServer::Listen(const HttpRoutes& routes) {
  httplib::Server& http = *http_;
  prometheus::Registry* reg = registry_.get();
  http.Get("/metrics", [reg, guard = routes.metrics_guard](const httplib::Request& req,
                                                            httplib::Response& res) {
    if (guard && !guard(req, res)) return;
    res.set_content(prometheus::TextSerializer().Serialize(reg->Collect()),
                    "text/plain; version=0.0.4");
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) res.set_content("only /metrics is here\n", "text/plain");
  });
  if (routes.mount) routes.mount(http);  // may replace the error handler
  thread_ = std::thread([this] { http_->listen_after_bind(); });
}

MetricsHttpServer::~MetricsHttpServer() {
  if (thread_.joinable()) {
    // stop() before the listener runs would be lost: wait for it (briefly).
    for (int i = 0; i < 200 && !http_->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    http_->stop();
    thread_.join();
  }
}

}  // namespace candies::server
