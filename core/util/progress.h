// Progress reporting and cooperative cancellation for long-running stages.
//
// core/ never prints progress itself: the CLI renders events as a bar on stderr,
// the daemon turns them into Watch() stream messages and metrics.
#pragma once

#include <atomic>
#include <functional>
#include <string>

namespace candies {

struct ProgressEvent {
  std::string stage;        // e.g. "preprocess", "gae_mod1", "denoise_fold2", "integrate"
  int64_t step = 0;         // epoch or iteration within the stage (1-based), 0 if none
  int64_t total_steps = 0;  // 0 if unknown
  double loss = 0.0;        // NaN when the stage has no loss
  double eta_seconds = -1;  // < 0 when unknown
  std::string message;      // optional free text
};

// Receives progress events. Must be cheap and thread-safe; may be empty.
using ProgressSink = std::function<void(const ProgressEvent&)>;

// Set from another thread to stop a running job; stages check it at least once
// per epoch and return absl::CancelledError.
class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

// Convenience for stages: reports an event if the sink is set and tells the
// caller whether to stop.
inline bool ReportAndCheckCancel(const ProgressSink& sink, const CancelToken* cancel,
                                 const ProgressEvent& event) {
  if (sink) sink(event);
  return cancel != nullptr && cancel->cancelled();
}

}  // namespace candies
