// Prometheus metrics of candiesd (prometheus-cpp). The registry always exists;
// the daemon's HTTP server (server/metrics_http.h) exposes it at /metrics.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace candies::server {

class Metrics {
 public:
  Metrics();

  void JobFinished(const std::string& kind, const std::string& state, double seconds);
  void SetQueueDepth(int n) { queue_depth_->Set(n); }
  void SetRunning(int n) { running_->Set(n); }
  // One finished RPC: counted by method and code; its latency (for streaming
  // RPCs, the whole stream) into a histogram by method.
  void Rpc(const std::string& method, const std::string& code, double seconds);
  // A pipeline stage (preprocess, gae, diffusion, integration, ...) ended.
  void StageFinished(const std::string& stage, double seconds);
  void SetModels(int resident, int64_t bytes) {
    models_resident_->Set(resident);
    model_bytes_->Set(static_cast<double>(bytes));
  }
  // Memory in use on the compute device. On a CPU device that is the daemon's
  // resident set size (read from /proc/self/statm); see docs/SERVICE.md.
  void SetDeviceMemory(const std::string& device, double bytes);
  // Re-reads what changes without an event (the process's memory).
  void Refresh();
  void BytesUploaded(double n) { uploaded_->Increment(n); }
  void BytesDownloaded(double n) { downloaded_->Increment(n); }

  prometheus::Registry& registry() { return *registry_; }
  const std::shared_ptr<prometheus::Registry>& shared_registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* jobs_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Family<prometheus::Counter>* rpcs_;
  prometheus::Family<prometheus::Histogram>* rpc_seconds_;
  prometheus::Family<prometheus::Histogram>* stage_seconds_;
  prometheus::Family<prometheus::Gauge>* device_memory_;
  prometheus::Gauge* models_resident_;
  prometheus::Gauge* model_bytes_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* running_;
  prometheus::Counter* uploaded_;
  prometheus::Counter* downloaded_;
};

}  // namespace candies::server
