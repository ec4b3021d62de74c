#include "server/worker_protocol.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/util/sibling_executable.h"
#include "google/protobuf/io/coded_stream.h"
#include "server/job_vocabulary.h"

namespace candies::server {

void AppendFrame(const google::protobuf::MessageLite& m, std::string* out) {
  const size_t n = m.ByteSizeLong();
  uint8_t len[10];
  uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(n, len);
  out->append(reinterpret_cast<const char*>(len), static_cast<size_t>(end - len));
  const size_t at = out->size();
  out->resize(at + n);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&(*out)[at]));
}

absl::StatusOr<bool> TakeFrame(std::string* buffer, google::protobuf::MessageLite* m) {
  uint64_t n = 0;
  int shift = 0;
  size_t i = 0;
  for (;; ++i) {
    if (i >= buffer->size()) return false;  // the length itself is incomplete
    if (i >= 10) return absl::DataLossError("worker frame: malformed length");
    const uint8_t b = static_cast<uint8_t>((*buffer)[i]);
    n |= static_cast<uint64_t>(b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) == 0) break;
  }
  if (n > static_cast<uint64_t>(kMaxWorkerFrameBytes)) {
    return absl::DataLossError(
        absl::StrCat("worker frame: ", n, " bytes, more than ", kMaxWorkerFrameBytes));
  }
  const size_t head = i + 1;
  if (buffer->size() - head < n) return false;
  if (!m->ParseFromArray(buffer->data() + head, static_cast<int>(n))) {
    return absl::DataLossError("worker frame: not a valid message");
  }
  buffer->erase(0, head + n);
  return true;
}

absl::Status WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("write: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

v1::WorkerJob ToWorkerJob(const JobSpec& s, const std::string& model_dir) {
  v1::WorkerJob j;
  j.set_id(s.id);
  j.set_owner(s.owner);
  j.set_mod1_path(s.mod1_path);
  j.set_mod2_path(s.mod2_path);
  j.set_mod1_kind(ToProto(s.mod1_kind));
  j.set_mod2_kind(ToProto(s.mod2_kind));
  j.set_kind(ToProto(s.kind));
  j.set_n_clusters(s.n_clusters);
  j.set_low_quality(ToProto(s.low_quality));
  j.set_preset(ToProto(s.preset));
  j.set_seed(s.seed);
  j.set_labels_key(s.labels_key);
  j.set_device(s.device);
  j.set_cluster_method(ToProto(s.cluster_method));
  j.set_threads(s.threads);
  j.set_result_path(s.result_path);
  j.set_denoised_path(s.denoised_path);
  j.set_report_path(s.report_path);
  j.set_pictures_dir(s.pictures_dir);
  j.set_model_dir(model_dir);
  j.set_save_model_dir(s.save_model_dir);
  return j;
}

absl::StatusOr<JobSpec> FromWorkerJob(const v1::WorkerJob& j) {
  JobSpec s;
  s.id = j.id();
  s.owner = j.owner();
  s.mod1_path = j.mod1_path();
  s.mod2_path = j.mod2_path();
  absl::StatusOr<ModalityKind> mod1_kind = FromProto(j.mod1_kind(), ModalityKind::kRna, "mod1_kind");
  absl::StatusOr<ModalityKind> mod2_kind =
      FromProto(j.mod2_kind(), ModalityKind::kProtein, "mod2_kind");
  absl::StatusOr<JobKind> kind = FromProto(j.kind());
  absl::StatusOr<LowQuality> low_quality = FromProto(j.low_quality());
  absl::StatusOr<Preset> preset = FromProto(j.preset());
  absl::StatusOr<std::optional<ClusterMethod>> method = FromProto(j.cluster_method());
  for (const absl::Status& st : {mod1_kind.status(), mod2_kind.status(), kind.status(),
                                 low_quality.status(), preset.status(), method.status()}) {
    if (!st.ok()) return st;
  }
  s.mod1_kind = *mod1_kind;
  s.mod2_kind = *mod2_kind;
  s.kind = *kind;
  s.n_clusters = j.n_clusters();
  s.low_quality = *low_quality;
  s.preset = *preset;
  s.cluster_method = *method;
  s.seed = j.seed();
  s.labels_key = j.labels_key();
  s.device = j.device();
  s.threads = j.threads();
  s.result_path = j.result_path();
  s.denoised_path = j.denoised_path();
  s.report_path = j.report_path();
  s.pictures_dir = j.pictures_dir();
  s.save_model_dir = j.save_model_dir();
  return s;
}

v1::WorkerProgress ToWorkerProgress(const ProgressEvent& e) {
  v1::WorkerProgress p;
  p.set_stage(e.stage);
  p.set_step(e.step);
  p.set_total_steps(e.total_steps);
  p.set_loss(e.loss);
  p.set_eta_seconds(e.eta_seconds);
  p.set_message(e.message);
  return p;
}

ProgressEvent FromWorkerProgress(const v1::WorkerProgress& p) {
  ProgressEvent e;
  e.stage = p.stage();
  e.step = p.step();
  e.total_steps = p.total_steps();
  e.loss = p.loss();
  e.eta_seconds = p.eta_seconds();
  e.message = p.message();
  return e;
}

std::vector<std::string> WorkerCommand(const std::string& worker, bool allow_test_faults) {
  std::vector<std::string> args = {worker.empty() ? SiblingExecutable("candies-worker") : worker};
  if (allow_test_faults) args.push_back("--allow-test-faults");
  return args;
}

absl::Status ReportStream::Append(absl::string_view bytes) {
  buffer_.append(bytes.data(), bytes.size());
  while (true) {
    v1::WorkerReport report;
    absl::StatusOr<bool> took = TakeFrame(&buffer_, &report);
    if (!took.ok()) return took.status();
    if (!*took) return absl::OkStatus();
    if (report.has_progress()) {
      if (progress_) progress_(FromWorkerProgress(report.progress()));
    } else if (report.has_outcome()) {
      outcome_ = report.outcome();
      have_outcome_ = true;
    }
  }
}

absl::StatusOr<std::string> OutcomeResult(const v1::WorkerOutcome& outcome,
                                          const std::string& memory_limit) {
  if (outcome.code() == 0) return outcome.result_path();
  if (outcome.out_of_memory()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory (", memory_limit, "): ", outcome.message()));
  }
  const int c = outcome.code();
  const bool known = c > 0 && c <= static_cast<int>(absl::StatusCode::kUnauthenticated);
  return absl::Status(known ? static_cast<absl::StatusCode>(c) : absl::StatusCode::kInternal,
                      outcome.message());
}

}  // namespace candies::server
