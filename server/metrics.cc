#include "server/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace candies::server {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  jobs_ = &prometheus::BuildCounter()
               .Name("candies_jobs_total")
               .Help("Jobs that reached a final state, by kind and state")
               .Register(*registry_);
  duration_ = &prometheus::BuildHistogram()
                   .Name("candies_job_duration_seconds")
                   .Help("Run time of finished jobs, by kind")
                   .Register(*registry_);
  rpcs_ = &prometheus::BuildCounter()
               .Name("candies_rpcs_total")
               .Help("RPCs by method and gRPC status code")
               .Register(*registry_);
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("candies_queue_depth")
                      .Help("Jobs waiting to run")
                      .Register(*registry_)
                      .Add({});
  running_ = &prometheus::BuildGauge()
                  .Name("candies_jobs_running")
                  .Help("Jobs running now")
                  .Register(*registry_)
                  .Add({});
  auto& bytes = prometheus::BuildCounter()
                    .Name("candies_bytes_total")
                    .Help("Payload bytes uploaded (datasets) and downloaded (results)")
                    .Register(*registry_);
  uploaded_ = &bytes.Add({{"direction", "upload"}});
  downloaded_ = &bytes.Add({{"direction", "download"}});
}

absl::Status Metrics::Serve(const std::string& address) {
  if (address.empty()) return absl::OkStatus();
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
    exposer_->RegisterCollectable(registry_);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics-listen ", address, ": ", e.what()));
  }
  return absl::OkStatus();
}

void Metrics::JobFinished(const std::string& kind, const std::string& state, double seconds) {
  jobs_->Add({{"kind", kind}, {"state", state}}).Increment();
  // 1 s .. ~9 h, x3 per bucket: jobs range from seconds (fast preset) to hours.
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000};
  duration_->Add({{"kind", kind}}, kBuckets).Observe(seconds);
}

void Metrics::Rpc(const std::string& method, const std::string& code) {
  rpcs_->Add({{"method", method}, {"code", code}}).Increment();
}

}  // namespace candies::server
