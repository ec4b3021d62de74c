// The daemon <-> worker wire (proto/candies/v1/worker.proto): messages framed
// as a varint length and the bytes (protobuf's delimited format), and the
// conversion between a JobSpec and the WorkerJob a worker receives. No LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "candies/v1/worker.pb.h"
#include "google/protobuf/message_lite.h"
#include "server/backend.h"

namespace candies::server {

// Largest frame either side accepts; a longer declared length is a protocol error.
inline constexpr int64_t kMaxWorkerFrameBytes = int64_t{16} << 20;

// Exit code of a worker whose allocation was refused outside a reportable
// point (operator new's handler): the daemon reports "out of memory".
inline constexpr int kWorkerOutOfMemoryExit = 3;

// Appends `m` framed to `out`.
void AppendFrame(const google::protobuf::MessageLite& m, std::string* out);

// Takes the first whole frame off `buffer` into `m`: true when one was there,
// false when more bytes are needed; an error for an over-long or unparsable frame.
absl::StatusOr<bool> TakeFrame(std::string* buffer, google::protobuf::MessageLite* m);

// Writes all of `bytes` to `fd` (retrying short writes and EINTR).
absl::Status WriteAll(int fd, const std::string& bytes);

// The worker's copy of a job. `model_dir` is where the worker loads the
// applied model from (empty: none).
v1::WorkerJob ToWorkerJob(const JobSpec& spec, const std::string& model_dir);
absl::StatusOr<JobSpec> FromWorkerJob(const v1::WorkerJob& job);  // errors name the field

v1::WorkerProgress ToWorkerProgress(const ProgressEvent& e);
ProgressEvent FromWorkerProgress(const v1::WorkerProgress& p);

// The worker's command line: `worker` ("" = candies-worker beside this
// executable), then --allow-test-faults when asked (tests only).
std::vector<std::string> WorkerCommand(const std::string& worker, bool allow_test_faults);

// A worker's report stream as it arrives (a pipe, or a file on a cluster's
// shared disk): progress goes to the sink at once, the outcome is kept.
class ReportStream {
 public:
  explicit ReportStream(ProgressSink progress) : progress_(std::move(progress)) {}
  // Takes the next bytes; an error for a frame that is not a WorkerReport.
  absl::Status Append(absl::string_view bytes);
  bool has_outcome() const { return have_outcome_; }
  const v1::WorkerOutcome& outcome() const { return outcome_; }

 private:
  ProgressSink progress_;
  std::string buffer_;
  bool have_outcome_ = false;
  v1::WorkerOutcome outcome_;
};

// The job's result from the worker's outcome: the result path, or the job's
// error with its status code. `memory_limit` describes the limit for an
// out-of-memory error ("limit N bytes, worker-max-memory-bytes").
absl::StatusOr<std::string> OutcomeResult(const v1::WorkerOutcome& outcome,
                                          const std::string& memory_limit);

}  // namespace candies::server
