// The HTTP/JSON API's mapping (server/http_api.h): error codes and bodies,
// the OpenAPI document against the routes, and in-process over loopback (the
// service fixture's store and identities) what a job's result file turns into
// at /v1/jobs/{id}/metrics, the report size limit and metrics-require-token.
// The whole daemon with curl: tests/server/http_api_test.sh.
#include "server/http_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <httplib.h>

#include <algorithm>
#include <set>

#include "server/metrics_http.h"
#include "service_fixture.h"

namespace candies::server::service_testing {
namespace {

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(json, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return s;
}

TEST(HttpApiMapping, StatusCodesFollowGoogleRpcMapping) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDataLoss), 500);
}

TEST(HttpApiMapping, ErrorBodyCarriesCodeStatusAndMessage) {
  const google::protobuf::Struct s =
      ParseJson(ErrorJson(absl::NotFoundError("job job-1 not found \"quoted\"")));
  const auto& e = s.fields().at("error").struct_value().fields();
  EXPECT_EQ(e.at("code").number_value(), 404);
  EXPECT_EQ(e.at("status").string_value(), "NOT_FOUND");
  EXPECT_EQ(e.at("message").string_value(), "job job-1 not found \"quoted\"");
}

TEST(HttpApiMapping, MessagesUseProtoFieldNamesAndPrintDefaults) {
  v1::Job job;
  job.set_id("job-1");
  job.set_queue_position(0);
  job.set_created_unix(1700000000);
  auto json = MessageJson(job);
  ASSERT_TRUE(json.ok()) << json.status();
  const google::protobuf::Struct doc = ParseJson(*json);
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("id").string_value(), "job-1");
  EXPECT_EQ(f.at("queue_position").number_value(), 0);  // printed although default
  EXPECT_EQ(f.at("created_unix").string_value(), "1700000000");  // int64: a string
  EXPECT_EQ(f.at("state").string_value(), "JOB_STATE_UNSPECIFIED");
  EXPECT_EQ(f.count("queuePosition"), 0u);
}

// The checked-in document describes exactly the routes Mount adds, plus /metrics.
TEST(HttpApiMapping, OpenApiDocumentListsExactlyTheRoutes) {
  const google::protobuf::Struct doc = ParseJson(std::string(HttpApi::OpenApiDocument()));
  EXPECT_EQ(doc.fields().at("openapi").string_value().substr(0, 2), "3.");
  std::set<std::string> documented;
  for (const auto& [path, item] : doc.fields().at("paths").struct_value().fields()) {
    documented.insert(path);
    EXPECT_EQ(item.struct_value().fields().count("get"), 1u) << path;
    EXPECT_EQ(item.struct_value().fields().size(), 1u) << path << ": only GET is served";
  }
  std::set<std::string> served = {"/metrics"};
  for (const std::string& p : HttpApi::Paths()) served.insert(p);
  EXPECT_EQ(documented, served);
}

// The service fixture plus the daemon's HTTP server with the API mounted.
class HttpApiTest : public ServiceTest {
 protected:
  void Configure(ServiceOptions& o) override { o.metrics_cache_entries = 1; }
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    HttpApiOptions o;
    o.max_report_bytes = 1024;
    o.metrics_require_token = true;
    api_ = std::make_unique<HttpApi>(o, &service_->queries(), auth_.get(), &metrics_);
    HttpRoutes routes;
    routes.mount = [this](httplib::Server& h) { api_->Mount(h); };
    routes.metrics_guard = [this](const httplib::Request& req, httplib::Response& res) {
      return api_->AllowMetrics(req, res);
    };
    auto http = MetricsHttpServer::Start("127.0.0.1:0", metrics_.shared_registry(), {}, routes);
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(*http);
  }
  void TearDown() override {
    http_.reset();  // before the service it reads
    ServiceTest::TearDown();
  }
  // GET `path` as `who` ("" = no token).
  httplib::Result Get(const std::string& path, const std::string& who = "alice") {
    httplib::Client c("http://" + http_->address());
    c.set_read_timeout(5, 0);
    httplib::Headers h;
    if (!who.empty()) h.emplace("Authorization", "Bearer " + tokens_.at(who));
    return c.Get(path, h);
  }
  // A SUCCEEDED job of `owner` whose result records `uns`, as the pipeline writes it.
  std::string FinishedJob(const std::string& owner, UnsValue uns) {
    v1::Job job;
    job.set_id(NewId("job"));
    job.set_owner(owner);
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    job.set_attempt(1);
    EXPECT_TRUE(store_->PutJob(job).ok());
    AnnData a;
    a.has_x = false;
    a.obs.index = {"s0", "s1", "s2"};
    a.obs.Set(Column::Categorical("candies_cluster", {"0", "1", "0"}));
    a.uns = UnsValue::Map();
    a.uns.Set("candies", std::move(uns));
    EXPECT_TRUE(WriteH5ad(a, store_->ResultPath(job.id())).ok());
    return job.id();
  }

  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<MetricsHttpServer> http_;
};

TEST_F(HttpApiTest, JobMetricsComeFromTheResultsUns) {
  UnsValue uns = UnsValue::Map(), metrics = UnsValue::Map(), secs = UnsValue::Map();
  metrics.Set("ari", UnsValue::Float(0.625));
  metrics.Set("n_domains", UnsValue::Int(7));
  metrics.Set("note", UnsValue::String("not a number: left out"));
  secs.Set("gae", UnsValue::Float(1.5));
  secs.Set("total", UnsValue::Float(2.25));
  uns.Set("metrics", metrics);
  uns.Set("seconds", secs);
  uns.Set("low_quality", UnsValue::String("mod1"));
  uns.Set("warnings", UnsValue::StringArray({"few spots", "no labels"}));
  const std::string id = FinishedJob("alice", uns);
  auto r = Get("/v1/jobs/" + id + "/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200) << r->body;
  const google::protobuf::Struct doc = ParseJson(r->body);
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("job_id").string_value(), id);
  EXPECT_EQ(f.at("n_obs").string_value(), "3");
  const auto& m = f.at("metrics").struct_value().fields();
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at("ari").number_value(), 0.625);
  EXPECT_EQ(m.at("n_domains").number_value(), 7);
  const auto& s = f.at("stage_seconds").struct_value().fields();
  EXPECT_EQ(s.at("gae").number_value(), 1.5);
  EXPECT_EQ(s.at("total").number_value(), 2.25);
  EXPECT_EQ(f.at("low_quality").string_value(), "mod1");
  ASSERT_EQ(f.at("warnings").list_value().values_size(), 2);
  EXPECT_EQ(f.at("warnings").list_value().values(1).string_value(), "no labels");
  // bob: the NotFound of a missing job; root: the same numbers.
  auto b = Get("/v1/jobs/" + id + "/metrics", "bob");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(ParseJson(b->body).fields().at("error").struct_value().fields().at("message").string_value(),
            "job " + id + " not found");
  auto root = Get("/v1/jobs/" + id + "/metrics", "root");
  ASSERT_TRUE(root);
  // (map order in protobuf's JSON is unspecified: compared parsed)
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ParseJson(root->body), doc));
}

// A result never changes: its metrics are read once and kept, up to
// http-metrics-cache-entries jobs (1 here), oldest dropped first.
TEST_F(HttpApiTest, JobMetricsAreCachedWithinTheBound) {
  UnsValue uns = UnsValue::Map(), metrics = UnsValue::Map();
  metrics.Set("ari", UnsValue::Float(0.5));
  uns.Set("metrics", metrics);
  const std::string a = FinishedJob("alice", uns);
  const std::string b = FinishedJob("alice", uns);
  auto r = Get("/v1/jobs/" + a + "/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::filesystem::remove(store_->ResultPath(a));
  r = Get("/v1/jobs/" + a + "/metrics");  // from the cache
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"ari\":0.5"), std::string::npos) << r->body;
  r = Get("/v1/jobs/" + b + "/metrics");  // takes the one place
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = Get("/v1/jobs/" + a + "/metrics");  // read again: the file is gone
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 200) << r->body;
  EXPECT_NE(r->body.find(a), std::string::npos) << r->body;
}

TEST_F(HttpApiTest, UnfinishedJobHasNoMetricsAndTheQueueShowsOwnJobs) {
  v1::Job job;
  job.set_id(NewId("job"));
  job.set_owner("bob");
  job.set_state(v1::JOB_STATE_FAILED);
  ASSERT_TRUE(store_->PutJob(job).ok());
  auto r = Get("/v1/jobs/" + job.id() + "/metrics", "bob");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("FAILED_PRECONDITION"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("has no result (state JOB_STATE_FAILED)"), std::string::npos) << r->body;
  // Rows RUNNING in the store (the queue lists store rows, decorated live).
  std::map<std::string, std::string> running;  // owner -> job id
  for (const char* owner : {"alice", "bob"}) {
    v1::Job j;
    j.set_id(NewId("job"));
    j.set_owner(owner);
    j.set_state(v1::JOB_STATE_RUNNING);
    ASSERT_TRUE(store_->PutJob(j).ok());
    running[owner] = j.id();
  }
  auto q = Get("/v1/queue", "alice");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->status, 200) << q->body;
  const google::protobuf::Struct doc = ParseJson(q->body);
  const auto& f = doc.fields();
  ASSERT_EQ(f.at("jobs").list_value().values_size(), 1) << q->body;
  EXPECT_EQ(f.at("jobs").list_value().values(0).struct_value().fields().at("id").string_value(),
            running["alice"]);
  EXPECT_EQ(f.at("max_queue").number_value(), 1000);
  EXPECT_EQ(f.at("workers").number_value(), 1);
  auto all = Get("/v1/queue", "root");
  ASSERT_TRUE(all);
  EXPECT_EQ(ParseJson(all->body).fields().at("jobs").list_value().values_size(), 2) << all->body;
}

TEST_F(HttpApiTest, ReportAboveTheLimitIsRefusedByName) {
  const std::string id = FinishedJob("alice", UnsValue::Map());
  std::ofstream(store_->ReportPath(id)) << "<html>" << std::string(2000, 'x') << "</html>";
  auto r = Get("/v1/jobs/" + id + "/report");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429) << r->body;
  EXPECT_NE(r->body.find("http-max-report-bytes = 1024"), std::string::npos) << r->body;
  std::ofstream(store_->ReportPath(id), std::ios::trunc) << "<html>small</html>";
  r = Get("/v1/jobs/" + id + "/report");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "<html>small</html>");
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  // A job without a report: the FetchResult message.
  const std::string bare = FinishedJob("alice", UnsValue::Map());
  r = Get("/v1/jobs/" + bare + "/report");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("has no report"), std::string::npos) << r->body;
}

TEST_F(HttpApiTest, MetricsNeedATokenWhenConfigured) {
  auto none = Get("/metrics", "");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(none->body.find("UNAUTHENTICATED"), std::string::npos);
  auto ok = Get("/metrics", "bob");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_NE(ok->body.find("candies_queue_depth"), std::string::npos);
  // A revoked or unknown token is refused alike.
  httplib::Client c("http://" + http_->address());
  auto wrong = c.Get("/metrics", httplib::Headers{{"Authorization", "Bearer cnd_nope"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
}

}  // namespace
}  // namespace candies::server::service_testing
