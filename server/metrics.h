// Prometheus metrics of candiesd (prometheus-cpp). The registry always exists;
// Serve() exposes it over HTTP at /metrics (main.cc; tests skip it).
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace candies::server {

class Metrics {
 public:
  Metrics();
  // Starts the HTTP exposer on `address` ("127.0.0.1:9464"); empty = off.
  absl::Status Serve(const std::string& address);

  void JobFinished(const std::string& kind, const std::string& state, double seconds);
  void SetQueueDepth(int n) { queue_depth_->Set(n); }
  void SetRunning(int n) { running_->Set(n); }
  void Rpc(const std::string& method, const std::string& code);
  void BytesUploaded(double n) { uploaded_->Increment(n); }
  void BytesDownloaded(double n) { downloaded_->Increment(n); }

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* jobs_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Family<prometheus::Counter>* rpcs_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* running_;
  prometheus::Counter* uploaded_;
  prometheus::Counter* downloaded_;
};

}  // namespace candies::server
