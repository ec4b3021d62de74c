// `candies inspect FILE [FILE...]`: shape, dtype, layout, sparsity and keys of
// .h5ad, .h5mu and 10x .h5 files. Exit 1 with one line per bad file.
#include <iostream>
#include <string>
#include <vector>

#include "client/cli/command.h"
#include "core/io/describe.h"

namespace candies::cli {
namespace {

int RunInspect(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cerr << "usage: candies inspect FILE [FILE...]\n";
    return args.empty() ? 1 : 0;
  }
  int rc = 0;
  for (const std::string& path : args) {
    absl::StatusOr<std::string> text = DescribeFile(path);
    if (!text.ok()) {
      // The status message already reads "<file>: <element>: <problem>".
      std::cerr << "candies inspect: " << text.status().message() << "\n";
      rc = 1;
      continue;
    }
    std::cout << *text;
  }
  return rc;
}

}  // namespace

CANDIES_CLI_COMMAND(inspect, "inspect", "print shape, dtype, sparsity and keys of .h5ad/.h5mu/10x .h5",
                    RunInspect);

}  // namespace candies::cli
