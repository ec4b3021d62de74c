// candiesd's read-only HTTP/JSON API for dashboards and LIMS, mounted on the
// daemon's HTTP server (server/metrics_http.h: the one that serves /metrics,
// thread pool, TLS when tls-cert/tls-key are set).
//
//   GET /healthz                  open: {"status": "SERVING"}
//   GET /openapi.json             open: the OpenAPI 3 document (server/openapi.json)
//   GET /v1/jobs                  ListJobsResponse (?state=&page_size=&page_token=)
//   GET /v1/jobs/{id}             Job
//   GET /v1/jobs/{id}/metrics     JobMetrics (http_api.proto)
//   GET /v1/jobs/{id}/report      the job's HTML report
//   GET /v1/queue                 QueueStatus (http_api.proto)
//   GET /v1/models                ListModelsResponse
//   GET /v1/models/{id}           Model
//
// Identities and isolation are the gRPC API's: `Authorization: Bearer
// <token>` checked by the same Authenticator, answers from the same Queries
// (a user sees their own jobs and their own and shared models; another user's
// job is the NotFound of a missing one). Bodies are protobuf's JSON mapping of
// the gRPC API's messages with the proto field names; errors are
// {"error": {"code": <HTTP status>, "status": "<gRPC code>", "message": ...}}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/queries.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace candies::server {

struct HttpApiOptions {
  // /metrics needs a valid bearer token too (metrics-require-token); default
  // open, as before the JSON API existed.
  bool metrics_require_token = false;
  int64_t max_report_bytes = int64_t{64} << 20;  // largest report served (http-max-report-bytes)
};

class HttpApi {
 public:
  // All must outlive the API and the server it is mounted on.
  HttpApi(HttpApiOptions options, Queries* queries, Authenticator* auth, Metrics* metrics)
      : options_(options), queries_(queries), auth_(auth), metrics_(metrics) {}

  // Adds the routes and JSON error answers to `http`, before it listens.
  void Mount(httplib::Server& http);
  // For MetricsHttpOptions::metrics_guard: true when /metrics may answer;
  // otherwise `res` holds the 401.
  bool AllowMetrics(const httplib::Request& req, httplib::Response& res);

  // The route templates Mount adds, e.g. "/v1/jobs/{id}" (not /metrics).
  // server/openapi.json describes exactly these (tests/server/http_api_test.cc).
  static std::vector<std::string> Paths();
  // server/openapi.json, embedded at build time.
  static std::string_view OpenApiDocument();

 private:
  struct Route;
  static const std::vector<Route>& Routes();  // the table Mount and Paths read
  void Handle(const Route& route, const httplib::Request& req, httplib::Response& res);
  absl::StatusOr<Principal> Authenticate(const httplib::Request& req);

  const HttpApiOptions options_;
  Queries* const queries_;
  Authenticator* const auth_;
  Metrics* const metrics_;
};

// The HTTP status of a gRPC/absl code (google/rpc/code.proto's mapping).
int HttpStatusOf(absl::StatusCode code);
// {"error": {"code": ..., "status": ..., "message": ...}}
std::string ErrorJson(const absl::Status& status);
// Protobuf's JSON mapping: proto field names, fields at their default printed.
absl::StatusOr<std::string> MessageJson(const google::protobuf::Message& m);

}  // namespace candies::server
