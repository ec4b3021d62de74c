// Validation of untrusted dataset files (uploads, registered paths) before the
// daemon accepts them: the parse runs in `candies-validate`, a small binary
// (server/validate_main.cc, no LibTorch) started under core/util/subprocess.h's
// sandbox, so a file that crashes, hangs or exhausts libhdf5 kills only that
// child. The daemon learns the outcome from its exit code and one line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/h5ad.h"
#include "core/util/subprocess.h"

namespace candies::server {

struct ValidationConfig {
  // The helper binary; "" = `candies-validate` beside the running executable.
  std::string validator;
  SandboxLimits sandbox;
  ReadLimits read;
};

struct ValidatedFile {
  int64_t n_obs = 0;
  int64_t n_vars = 0;
};

// The command line the daemon runs (also what the tests run).
std::vector<std::string> ValidatorArgs(const ValidationConfig& config, const std::string& path);

// InvalidArgument with the reader's message for a bad file, or naming how the
// child died ("killed by signal 11 (Segmentation fault)"); FailedPrecondition
// when the helper cannot be started.
absl::StatusOr<ValidatedFile> ValidateInSandbox(const std::string& path,
                                                const ValidationConfig& config);

// The helper's side: parses ValidatorArgs' flags into limits and the path.
absl::Status ParseValidatorArgs(const std::vector<std::string>& args, ReadLimits* limits,
                                std::string* path);

}  // namespace candies::server
