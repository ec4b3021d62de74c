#include "server/http_api.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <exception>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "candies/v1/http_api.pb.h"
#include "core/util/status_macros.h"
#include "server/errors.h"
#include "server/log.h"

namespace candies::server {

extern const char kOpenApiJson[];  // openapi.cc, generated from server/openapi.json

namespace {

constexpr const char* kJson = "application/json";

// The headers every answer carries: personal data, never cached by a proxy;
// the declared type is the only one.
void CommonHeaders(httplib::Response& res) {
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
}

std::string ErrorJsonWith(int http_status, absl::StatusCode code, const std::string& message) {
  v1::ErrorBody body;
  body.mutable_error()->set_code(http_status);
  body.mutable_error()->set_status(absl::StatusCodeToString(code));
  body.mutable_error()->set_message(message);
  absl::StatusOr<std::string> json = MessageJson(body);
  return json.ok() ? *json + "\n" : "{\"error\": {\"code\": 500}}\n";
}

void WriteError(httplib::Response& res, const absl::Status& s) {
  res.status = HttpStatusOf(s.code());
  if (s.code() == absl::StatusCode::kUnauthenticated) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"candiesd\"");
  }
  res.set_content(ErrorJson(s), kJson);
}

absl::Status WriteJson(httplib::Response& res, const google::protobuf::Message& m) {
  CANDIES_ASSIGN_OR_RETURN(std::string json, MessageJson(m));
  res.set_content(json + "\n", kJson);
  return absl::OkStatus();
}

// "RUNNING" or "JOB_STATE_RUNNING".
absl::StatusOr<v1::JobState> ParseState(const std::string& v) {
  v1::JobState s = v1::JOB_STATE_UNSPECIFIED;
  if (v1::JobState_Parse(v, &s) || v1::JobState_Parse("JOB_STATE_" + v, &s)) return s;
  return Invalid("state", absl::StrCat("'", v, "' is not QUEUED, RUNNING, SUCCEEDED, FAILED, ",
                                       "CANCELLED or DEADLINE_EXCEEDED"));
}

absl::StatusOr<v1::ListJobsRequest> ListJobsRequestOf(const httplib::Request& req) {
  v1::ListJobsRequest r;
  if (req.has_param("state")) {
    CANDIES_ASSIGN_OR_RETURN(v1::JobState s, ParseState(req.get_param_value("state")));
    r.set_state(s);
  }
  if (req.has_param("page_size")) {
    int n = 0;
    const std::string v = req.get_param_value("page_size");
    if (!absl::SimpleAtoi(v, &n)) return Invalid("page_size", absl::StrCat("'", v, "' is not an integer"));
    r.set_page_size(n);
  }
  r.set_page_token(req.get_param_value("page_token"));
  return r;
}

std::string Utf8(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return "";
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

// The identity of a client certificate that the TLS layer verified (the
// server asks for one only with tls-client-ca): its subject CN, or without a
// CN its first DNS, email or URI subject alternative name; "" when none.
std::string CertificateIdentity(const httplib::Request& req) {
  if (req.ssl == nullptr || SSL_get_verify_result(req.ssl) != X509_V_OK) return "";
  X509* cert = SSL_get1_peer_certificate(req.ssl);
  if (cert == nullptr) return "";
  std::string id;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (cn >= 0) id = Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)));
  if (id.empty()) {
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans) && id.empty(); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) id = Utf8(g->d.ia5);
    }
    GENERAL_NAMES_free(sans);
  }
  X509_free(cert);
  return id;
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;  // Unknown, Internal, DataLoss
  }
}

std::string ErrorJson(const absl::Status& status) {
  return ErrorJsonWith(HttpStatusOf(status.code()), status.code(), std::string(status.message()));
}

absl::StatusOr<std::string> MessageJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;  // the .proto's names, as the gRPC API documents them
#if GOOGLE_PROTOBUF_VERSION >= 5026000
  o.always_print_fields_with_no_presence = true;
#else
  o.always_print_primitive_fields = true;  // queue_position 0, state, ... printed
#endif
  std::string out;
  auto s = google::protobuf::util::MessageToJsonString(m, &out, o);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat("JSON of ", m.GetTypeName(), ": ", s.ToString()));
  }
  return out;
}

// One route: its template, whether it needs a credential, the query
// parameters it takes and what it answers.
struct HttpApi::Route {
  const char* path;
  bool open;
  std::vector<std::string> params;
  std::function<absl::Status(HttpApi&, const Principal&, const httplib::Request&,
                             httplib::Response&)>
      run;
};

namespace {

std::string Id(const httplib::Request& req) { return req.matches.size() > 1 ? req.matches[1].str() : ""; }

}  // namespace

std::vector<std::string> HttpApi::Paths() {
  std::vector<std::string> out;
  for (const Route& r : Routes()) out.push_back(r.path);
  return out;
}

std::string_view HttpApi::OpenApiDocument() { return kOpenApiJson; }

absl::StatusOr<Principal> HttpApi::Authenticate(const httplib::Request& req) {
  if (auth_ == nullptr) return absl::UnauthenticatedError("no authenticator");
  Credentials c;
  c.authorization = req.get_header_value("Authorization");
  c.certificate_identity = CertificateIdentity(req);
  c.dev_owner = req.get_header_value("X-Candies-Owner");
  return auth_->Resolve(c);
}

void HttpApi::Handle(const Route& route, const httplib::Request& req, httplib::Response& res) {
  const absl::Time t0 = absl::Now();
  CommonHeaders(res);
  absl::StatusOr<Principal> who = route.open ? Principal{"-", Role::kUser} : Authenticate(req);
  absl::Status status = who.status();
  for (const auto& [key, value] : req.params) {
    if (!status.ok()) break;
    if (std::find(route.params.begin(), route.params.end(), key) == route.params.end()) {
      status = Invalid(key, absl::StrCat("is not a query parameter of GET ", route.path, " (it takes: ",
                                         route.params.empty() ? "none" : absl::StrJoin(route.params, ", "),
                                         ")"));
    }
  }
  if (status.ok()) status = route.run(*this, *who, req, res);
  if (!status.ok()) WriteError(res, status);
  const std::string method = absl::StrCat("GET ", route.path);
  metrics_->Rpc(method, std::string(absl::StatusCodeToString(status.code())),
                absl::ToDoubleSeconds(absl::Now() - t0));
  if (!who.ok()) {  // refused credentials leave an audit line, as on the gRPC API
    LogLine("warn", "audit",
            {{"rpc", method},
             {"identity", "-"},
             {"role", "-"},
             {"peer", absl::StrCat(req.remote_addr, ":", req.remote_port)},
             {"object", "-"},
             {"code", absl::StatusCodeToString(status.code())}});
  }
}

bool HttpApi::AllowMetrics(const httplib::Request& req, httplib::Response& res) {
  if (!options_.metrics_require_token) return true;
  absl::StatusOr<Principal> who = Authenticate(req);
  if (who.ok()) return true;
  CommonHeaders(res);
  WriteError(res, who.status());
  LogLine("warn", "audit",
          {{"rpc", "GET /metrics"},
           {"identity", "-"},
           {"role", "-"},
           {"peer", absl::StrCat(req.remote_addr, ":", req.remote_port)},
           {"object", "-"},
           {"code", absl::StatusCodeToString(who.status().code())}});
  return false;
}

void HttpApi::Mount(httplib::Server& http) {
  for (const Route& r : Routes()) {
    const std::string pattern = absl::StrReplaceAll(r.path, {{".", "\\."}, {"{id}", "([^/]+)"}});
    http.Get(pattern, [this, &r](const httplib::Request& req, httplib::Response& res) {
      Handle(r, req, res);
    });
  }
  // Answers httplib makes itself (no route, bad request line, too large)
  // become JSON errors too; answers with a body already are left alone.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    CommonHeaders(res);
    absl::StatusCode code = absl::StatusCode::kInvalidArgument;
    std::string message = absl::StrCat("HTTP ", res.status);
    if (!req.method.empty() && req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET");
      code = absl::StatusCode::kUnimplemented;
      message = absl::StrCat("method: ", req.method, " ", req.path,
                             " is not served; the JSON API is read-only (GET only)");
    } else if (res.status == 404) {
      code = absl::StatusCode::kNotFound;
      message = absl::StrCat("path: no route for ", req.method, " ", req.path,
                             " (GET /openapi.json lists the paths)");
    } else if (res.status == 413) {
      code = absl::StatusCode::kResourceExhausted;
      message = "request body too large (http-max-body-bytes)";
    } else if (res.status >= 500) {
      code = absl::StatusCode::kInternal;
    }
    res.set_content(ErrorJsonWith(res.status, code, message), kJson);
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    LogLine("error", "http handler failed", {{"error", what}});
    CommonHeaders(res);
    WriteError(res, absl::InternalError(absl::StrCat("internal error: ", what)));
  });
}

const std::vector<HttpApi::Route>& HttpApi::Routes() {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  static const auto* routes = new std::vector<HttpApi::Route>{
      {"/healthz", true, {}, [](HttpApi&, const Principal&, Req, Res res) {
         v1::Health h;
         h.set_status("SERVING");
         return WriteJson(res, h);
       }},
      {"/openapi.json", true, {}, [](HttpApi&, const Principal&, Req, Res res) {
         res.set_content(std::string(HttpApi::OpenApiDocument()), kJson);
         return absl::OkStatus();
       }},
      {"/v1/jobs", false, {"state", "page_size", "page_token"},
       [](HttpApi& api, const Principal& who, Req req, Res res) {
         CANDIES_ASSIGN_OR_RETURN(v1::ListJobsRequest r, ListJobsRequestOf(req));
         CANDIES_ASSIGN_OR_RETURN(v1::ListJobsResponse out, api.queries_->ListJobs(who, r));
         return WriteJson(res, out);
       }},
      {"/v1/jobs/{id}", false, {}, [](HttpApi& api, const Principal& who, Req req, Res res) {
         CANDIES_ASSIGN_OR_RETURN(v1::Job job, api.queries_->GetJob(who, Id(req)));
         return WriteJson(res, job);
       }},
      {"/v1/jobs/{id}/metrics", false, {}, [](HttpApi& api, const Principal& who, Req req, Res res) {
         CANDIES_ASSIGN_OR_RETURN(v1::JobMetrics m, api.queries_->JobMetrics(who, Id(req)));
         return WriteJson(res, m);
       }},
      {"/v1/jobs/{id}/report", false, {}, [](HttpApi& api, const Principal& who, Req req, Res res) {
         CANDIES_ASSIGN_OR_RETURN(std::string html,
                                  api.queries_->Report(who, Id(req), api.options_.max_report_bytes));
         // The report is self-contained: inline styles and data: images, no
         // scripts; the policy keeps it so even if a name in it were hostile.
         res.set_header("Content-Security-Policy",
                        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox");
         res.set_content(std::move(html), "text/html; charset=utf-8");
         return absl::OkStatus();
       }},
      {"/v1/queue", false, {}, [](HttpApi& api, const Principal& who, Req, Res res) {
         return WriteJson(res, api.queries_->Queue(who));
       }},
      {"/v1/models", false, {}, [](HttpApi& api, const Principal& who, Req, Res res) {
         return WriteJson(res, api.queries_->ListModels(who));
       }},
      {"/v1/models/{id}", false, {}, [](HttpApi& api, const Principal& who, Req req, Res res) {
         CANDIES_ASSIGN_OR_RETURN(v1::Model m, api.queries_->SeenModel(who, Id(req)));
         return WriteJson(res, m);
       }},
  };
  return *routes;
}

}  // namespace candies::server
