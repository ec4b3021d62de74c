#include "server/slurm_state.h"

#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace candies::server {
namespace {

// Odd output goes into error messages: shortened, one line, printable.
std::string Quote(absl::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) {
    out.push_back(absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : ' ');
  }
  if (text.size() > 200) out += "...";
  return absl::StrCat("'", out, "'");
}

bool IsDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Splits scontrol's output into one key -> value map per job: each job's
// record begins with a JobId= field, in the one-line (-o) and the multi-line form.
std::vector<std::map<std::string, std::string>> Records(absl::string_view output) {
  std::vector<std::map<std::string, std::string>> records;
  for (absl::string_view token : absl::StrSplit(output, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    const size_t eq = token.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;  // a value's words after a space
    std::string key(token.substr(0, eq));
    if (key == "JobId") records.emplace_back();
    if (records.empty()) continue;
    records.back().emplace(std::move(key), std::string(token.substr(eq + 1)));  // first one wins
  }
  return records;
}

}  // namespace

absl::StatusOr<std::string> ParseSbatchJobId(absl::string_view output) {
  absl::string_view line = absl::StripAsciiWhitespace(output);
  // Anything before the last line is a warning sbatch printed.
  const size_t nl = line.rfind('\n');
  if (nl != absl::string_view::npos) line = absl::StripAsciiWhitespace(line.substr(nl + 1));
  absl::string_view id = line.substr(0, line.find(';'));
  if (!IsDigits(id) || id.size() > 18) {
    return absl::InternalError(absl::StrCat("sbatch --parsable printed no job id: ", Quote(output)));
  }
  return std::string(id);
}

absl::StatusOr<SlurmJob> ParseScontrolJob(absl::string_view output, absl::string_view id) {
  const std::vector<std::map<std::string, std::string>> records = Records(output);
  if (records.empty()) {
    if (absl::StrContains(output, "Invalid job id")) {
      return absl::NotFoundError(absl::StrCat("Slurm does not know job ", id));
    }
    return absl::InternalError(
        absl::StrCat("scontrol show job ", id, ": no JobId= in its output: ", Quote(output)));
  }
  for (const auto& r : records) {
    auto field = [&](const char* key) -> const std::string* {
      auto it = r.find(key);
      return it == r.end() ? nullptr : &it->second;
    };
    if (*field("JobId") != id) continue;
    SlurmJob job;
    job.id = std::string(id);
    const std::string* state = field("JobState");
    if (state == nullptr || state->empty()) {
      return absl::InternalError(
          absl::StrCat("scontrol show job ", id, ": no JobState in its output: ", Quote(output)));
    }
    job.state = *state;
    if (const std::string* reason = field("Reason")) job.reason = *reason;
    if (const std::string* nodes = field("NodeList")) job.node_list = *nodes;
    const std::string* exit = field("ExitCode");
    if (exit != nullptr) {
      std::vector<absl::string_view> parts = absl::StrSplit(*exit, ':');
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &job.exit_code) ||
          !absl::SimpleAtoi(parts[1], &job.exit_signal) || job.exit_code < 0 || job.exit_signal < 0) {
        return absl::InternalError(absl::StrCat("scontrol show job ", id, ": ExitCode ",
                                                Quote(*exit), " is not CODE:SIGNAL"));
      }
    }
    return job;
  }
  return absl::InternalError(absl::StrCat("scontrol show job ", id,
                                          ": its output is about other jobs: ", Quote(output)));
}

bool IsUnknownJobError(absl::string_view stderr_text) {
  return absl::StrContains(stderr_text, "Invalid job id specified");
}

absl::StatusOr<SlurmOutcome> ClassifySlurmState(absl::string_view state) {
  // scontrol may add words ("CANCELLED by 0" in other tools); the first decides.
  state = state.substr(0, state.find(' '));
  static const std::map<absl::string_view, SlurmOutcome>* const kStates =
      new std::map<absl::string_view, SlurmOutcome>{
          {"PENDING", SlurmOutcome::kActive},       {"RUNNING", SlurmOutcome::kActive},
          {"CONFIGURING", SlurmOutcome::kActive},   {"COMPLETING", SlurmOutcome::kActive},
          {"SUSPENDED", SlurmOutcome::kActive},     {"STOPPED", SlurmOutcome::kActive},
          {"RESIZING", SlurmOutcome::kActive},      {"SIGNALING", SlurmOutcome::kActive},
          {"STAGE_OUT", SlurmOutcome::kActive},     {"REQUEUED", SlurmOutcome::kActive},
          {"REQUEUE_FED", SlurmOutcome::kActive},   {"REQUEUE_HOLD", SlurmOutcome::kActive},
          {"RESV_DEL_HOLD", SlurmOutcome::kActive}, {"COMPLETED", SlurmOutcome::kCompleted},
          {"FAILED", SlurmOutcome::kFailed},        {"TIMEOUT", SlurmOutcome::kFailed},
          {"OUT_OF_MEMORY", SlurmOutcome::kFailed}, {"CANCELLED", SlurmOutcome::kFailed},
          {"DEADLINE", SlurmOutcome::kFailed},      {"SPECIAL_EXIT", SlurmOutcome::kFailed},
          {"REVOKED", SlurmOutcome::kFailed},       {"NODE_FAIL", SlurmOutcome::kRetry},
          {"PREEMPTED", SlurmOutcome::kRetry},      {"BOOT_FAIL", SlurmOutcome::kRetry},
      };
  auto it = kStates->find(state);
  if (it == kStates->end()) {
    return absl::InternalError(absl::StrCat("unknown Slurm job state ", Quote(state)));
  }
  return it->second;
}

std::string DescribeSlurmEnd(const SlurmJob& job) {
  std::string why;
  const absl::string_view state = absl::string_view(job.state).substr(0, job.state.find(' '));
  if (state == "TIMEOUT") {
    why = "ran past its time limit (slurm-time-limit)";
  } else if (state == "OUT_OF_MEMORY") {
    why = "out of memory (slurm-memory)";
  } else if (state == "CANCELLED") {
    why = "cancelled on the cluster (scancel)";
  } else if (state == "NODE_FAIL") {
    why = "its node failed";
  } else if (state == "PREEMPTED") {
    why = "preempted";
  } else if (state == "BOOT_FAIL") {
    why = "its node failed to boot";
  } else if (state == "DEADLINE") {
    why = "ran past its Slurm deadline";
  } else if (job.exit_signal != 0) {
    // The batch shell itself was killed: the memory enforcer's SIGKILL shows as 0:9.
    why = absl::StrCat("the worker was killed by signal ", job.exit_signal, " (",
                       strsignal(job.exit_signal), ")",
                       job.exit_signal == 9 ? ": out of memory (slurm-memory) or killed on the node"
                                            : "");
  } else if (job.exit_code > 128 && job.exit_code < 128 + 65) {
    // The shell reports a worker killed by signal S as exit code 128 + S.
    const int sig = job.exit_code - 128;
    why = absl::StrCat("the worker was killed by signal ", sig, " (", strsignal(sig), ")");
  } else if (job.exit_code != 0) {
    why = absl::StrCat("the worker exited with code ", job.exit_code);
  } else {
    why = absl::StrCat("reason ", job.reason.empty() ? "unknown" : job.reason);
  }
  return absl::StrCat("Slurm job ", job.id, " ", state, ": ", why);
}

}  // namespace candies::server
