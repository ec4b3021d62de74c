// `candies inspect FILE [FILE...]`: shape, dtype, layout, sparsity and keys of
// .h5ad, .h5mu and 10x .h5 files. Exit 1 with one line per bad file.
//
// Each file is parsed in a child process (core/util/subprocess.h): a corrupt
// file can crash or hang libhdf5 itself, which no check in our reader can
// prevent; the child's death becomes one error line and exit code 1.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cli/command.h"
#include "core/io/describe.h"
#include "core/util/subprocess.h"

namespace candies::cli {
namespace {

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// One file: the description on stdout (exit 0) or one error line (exit 1).
int InspectOne(const std::string& path, const SandboxLimits& limits) {
  absl::StatusOr<SandboxResult> r = RunInChild(
      [&](int out) {
        absl::StatusOr<std::string> text = DescribeFile(path);
        // The status message already reads "<file>: <element>: <problem>".
        if (!text.ok()) return WriteAll(out, std::string(text.status().message())) ? 1 : 2;
        return WriteAll(out, *text) ? 0 : 2;
      },
      limits);
  if (!r.ok()) {
    std::cerr << "candies inspect: " << path << ": /: " << r.status().message() << "\n";
    return 1;
  }
  if (r->ok()) {
    std::cout << r->output;
    return 0;
  }
  if (r->exit_code == 1 && r->signal == 0 && !r->timed_out) {
    std::cerr << "candies inspect: " << r->output << "\n";
  } else {
    std::cerr << "candies inspect: " << path << ": /: the reader " << r->Describe()
              << " (corrupt file?)\n";
  }
  return 1;
}

int RunInspect(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::cerr << "usage: candies inspect [--timeout SECONDS] [--max-memory-mib MIB] FILE...\n"
                 "  each file is read in a child process: a crash, a hang longer than\n"
                 "  --timeout (default 300) or more memory than --max-memory-mib\n"
                 "  (default 65536) is reported as an error for that file\n";
    return argv.empty() ? 1 : 0;
  }
  SandboxLimits limits;
  limits.max_memory_bytes = int64_t{64} << 30;
  limits.wall_seconds = 300;
  limits.cpu_seconds = 300;
  limits.max_output_bytes = int64_t{16} << 20;
  std::vector<std::string> files;
  for (size_t i = 0; i < argv.size(); ++i) {
    const bool has_value = i + 1 < argv.size();
    int64_t v = 0;
    if (argv[i] == "--timeout" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &v) || v <= 0) {
        std::cerr << "candies inspect: --timeout: expected a positive number of seconds\n";
        return 1;
      }
      limits.wall_seconds = static_cast<double>(v);
      limits.cpu_seconds = static_cast<int>(v);
    } else if (argv[i] == "--max-memory-mib" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &v) || v <= 0) {
        std::cerr << "candies inspect: --max-memory-mib: expected a positive number\n";
        return 1;
      }
      limits.max_memory_bytes = v << 20;
    } else {
      files.push_back(argv[i]);
    }
  }
  int rc = 0;
  for (const std::string& path : files) rc |= InspectOne(path, limits);
  return rc;
}

}  // namespace

CANDIES_CLI_COMMAND(inspect, "inspect", "print shape, dtype, sparsity and keys of .h5ad/.h5mu/10x .h5",
                    RunInspect);

}  // namespace candies::cli
