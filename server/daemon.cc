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
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/build_info.h"
#include "core/util/status_macros.h"
#include "server/auth.h"
#include "server/http_api.h"
#include "server/metrics_http.h"
#include "server/log.h"
#include "server/service.h"

namespace candies::server {

namespace {

// Largest gRPC message the daemon accepts (docs/SERVICE.md, "Upload
// throughput"): an upload chunk is one block of rows (the Python client sends
// 8 MiB, the CLI 2 MiB); larger messages are RESOURCE_EXHAUSTED.
constexpr int kMaxMessageBytes = 64 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (!in || s.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": cannot read ", path));
  }
  return s.str();
}

// TLS when tls-cert/tls-key are set; client certificates are verified against
// tls-client-ca when set (requested, not required: token clients need none).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const DaemonConfig& c) {
  if (c.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions opt(
      c.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  CANDIES_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("tls-cert", c.tls_cert));
  CANDIES_ASSIGN_OR_RETURN(pair.private_key, ReadPem("tls-key", c.tls_key));
  opt.pem_key_cert_pairs.push_back(std::move(pair));
  if (!c.tls_client_ca.empty()) {
    CANDIES_ASSIGN_OR_RETURN(opt.pem_root_certs, ReadPem("tls-client-ca", c.tls_client_ca));
  }
  return grpc::SslServerCredentials(opt);
}

}  // namespace

int RunDaemon(const DaemonConfig& config, JobBackend* backend) {
  if (absl::Status s = ValidateDaemonConfig(config); !s.ok()) {
    LogLine("error", "refusing to start", {{"error", std::string(s.message())}});
    std::fprintf(stderr, "candiesd: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto creds = ServerCredentials(config);
  if (!creds.ok()) {
    LogLine("error", "refusing to start", {{"error", std::string(creds.status().message())}});
    std::fprintf(stderr, "candiesd: %s\n", std::string(creds.status().message()).c_str());
    return 2;
  }
  // Block the stop signals in every thread (threads inherit the mask); the
  // main thread collects them with sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto store = Store::Open(config.data_dir, config.max_attempts);
  if (!store.ok()) {
    LogLine("error", "cannot open store", {{"error", store.status().ToString()}});
    return 1;
  }
  if ((*store)->requeued_on_open() > 0) {
    LogLine("info", "requeued interrupted jobs", {{"count", absl::StrCat((*store)->requeued_on_open())}});
  }
  if ((*store)->cleared_owners_on_open() > 0) {
    LogLine("warn", "rows from before identities now belong to owner \"\" (admins only)",
            {{"count", absl::StrCat((*store)->cleared_owners_on_open())}});
  }
  MetricsHttpOptions metrics_options;
  metrics_options.threads = config.metrics_threads;
  metrics_options.read_timeout_seconds = config.metrics_read_timeout_seconds;
  metrics_options.write_timeout_seconds = config.metrics_write_timeout_seconds;
  metrics_options.tls_cert = config.tls_cert;
  metrics_options.tls_key = config.tls_key;
  metrics_options.tls_client_ca = config.tls_client_ca;
  metrics_options.max_body_bytes = config.http_max_body_bytes;
  if ((*store)->failed_on_open() > 0) {
    LogLine("warn", "interrupted jobs failed after max-attempts runs",
            {{"count", absl::StrCat((*store)->failed_on_open())},
             {"max_attempts", absl::StrCat(config.max_attempts)}});
  }
  Metrics metrics;
  // The HTTP server (/metrics and the JSON API) takes its port now, so that a
  // taken port fails before any job starts, and serves once the service exists.
  std::unique_ptr<MetricsHttpServer> bound_http;
  if (!config.metrics_listen.empty()) {
    auto http = MetricsHttpServer::Bind(config.metrics_listen, metrics.shared_registry(), metrics_options);
    if (!http.ok()) {
      LogLine("error", "cannot serve metrics", {{"error", http.status().ToString()}});
      return 1;
    }
    bound_http = std::move(*http);
    // Before candiesd.port: whoever sees the gRPC port also finds this file.
    const std::string path = (std::filesystem::path(config.data_dir) / "candiesd.metrics").string();
    std::ofstream(path + ".tmp") << bound_http->address() << "\n";
    std::error_code ec;
    std::filesystem::rename(path + ".tmp", path, ec);
  }
  ServiceOptions opt;
  opt.max_upload_bytes = config.max_upload_bytes;
  opt.allowed_dirs = config.allowed_dirs;
  opt.device = config.device;
  opt.scheduler.slots = EffectiveDeviceSlots(config);
  opt.scheduler.max_queue = config.max_queue;
  opt.max_queued_per_owner = config.max_queued_per_owner;
  opt.max_dataset_bytes_per_owner = config.max_dataset_bytes_per_owner;
  opt.max_obs_columns = config.max_obs_columns;
  opt.model_memory_budget = config.model_memory_budget;
  opt.max_user_priority = config.max_user_priority;
  opt.max_deadline_seconds = config.max_deadline_seconds;
  opt.max_streams = config.max_streams;
  opt.max_streams_per_user = config.max_streams_per_user;
  AuthOptions auth_options;
  auth_options.token_file = config.token_file;
  auth_options.mtls = !config.tls_client_ca.empty();
  auth_options.admin_identities = config.admin_identities;
  auth_options.insecure_dev_mode = config.insecure_dev_mode;
  Authenticator auth(auth_options);
  opt.auth = &auth;
  if (config.insecure_dev_mode) {
    LogLine("warn", "insecure-dev-mode: no authentication, every caller is admin (loopback only)");
  } else if (config.tls_cert.empty()) {
    LogLine("warn", "no TLS: bearer tokens travel in clear text (set tls-cert/tls-key)");
  }
  opt.validation.validator = config.validator;
  opt.validation.sandbox.max_memory_bytes = config.validate_max_memory_bytes;
  opt.validation.sandbox.cpu_seconds = config.validate_cpu_seconds;
  opt.validation.sandbox.wall_seconds = config.validate_timeout_seconds;
  opt.validation.read.max_elements = config.read_max_elements;
  opt.validation.read.max_total_bytes = config.read_max_total_bytes;
  opt.validation.read.max_element_bytes = config.read_max_total_bytes;
  opt.validation.read.max_string_bytes = config.read_max_string_bytes;
  opt.validation.read.max_group_members = config.read_max_group_members;
  opt.max_register_bytes = config.max_register_bytes;
  opt.max_page_size = config.max_page_size;
  opt.metrics_cache_entries = config.http_metrics_cache_entries;
  CandiesService service(opt, store->get(), backend, &metrics);

  // The JSON API reads the service's parts: declared after the service, the
  // server stops before the service goes away, on every return.
  HttpApiOptions api_options;
  api_options.metrics_require_token = config.metrics_require_token;
  api_options.max_report_bytes = config.http_max_report_bytes;
  HttpApi api(api_options, &service.queries(), &auth, &metrics);
  std::unique_ptr<MetricsHttpServer> http = std::move(bound_http);
  if (http != nullptr) {
    HttpRoutes routes;
    if (config.http_api) routes.mount = [&api](httplib::Server& h) { api.Mount(h); };
    routes.metrics_guard = [&api](const httplib::Request& req, httplib::Response& res) {
      return api.AllowMetrics(req, res);
    };
    http->Listen(routes);
  }
  const std::string http_address = http != nullptr ? http->address() : "";

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, *creds, &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    LogLine("error", "cannot listen", {{"listen", config.listen}});
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
  std::printf("candiesd listening on %s (%s)\n", address.c_str(), BuildInfoLine().c_str());
  if (!http_address.empty()) {
    const char* scheme = config.tls_cert.empty() ? "http" : "https";
    std::printf("candiesd metrics on %s://%s/metrics%s\n", scheme, http_address.c_str(),
                config.http_api ? ", JSON API at /v1 (/openapi.json)" : "");
  }
  std::fflush(stdout);
  LogLine("info", "started",
          {{"listen", address},
           {"metrics", http_address},
           {"http_api", config.http_api && http != nullptr ? "on" : "off"},
           {"data_dir", config.data_dir},
           {"device_slots", FormatDeviceSlots(EffectiveDeviceSlots(config))},
           {"tls", config.tls_cert.empty() ? "off" : (config.tls_client_ca.empty() ? "on" : "mtls")},
           {"tokens", config.token_file.empty() ? "off" : "on"},
           {"dev_mode", config.insecure_dev_mode ? "on" : "off"},
           {"torch", GetBuildInfo().torch},
           {"cuda", GetBuildInfo().cuda.empty() ? "none" : GetBuildInfo().cuda}});

  int sig = 0;
  sigwait(&stop, &sig);
  LogLine("info", "stopping", {{"signal", absl::StrCat(sig)}});
  // Workers first (interrupted jobs stay RUNNING and are requeued on the next
  // start), which also ends open WatchJob streams; then in-flight RPCs.
  http.reset();  // the JSON API reads the service
  backend->PrepareShutdown();
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  LogLine("info", "stopped");
  return 0;
}

}  // namespace candies::server
