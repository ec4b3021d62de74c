// `candies`: the command-line entry point. Each subcommand is a cmd_*.cc file.
#include <cstdio>
#include <string>
#include <vector>

#include "client/cli/command.h"
#include "core/util/build_info.h"

namespace candies::cli {

std::vector<Command>& MutableCommands() {
  static std::vector<Command> commands;
  return commands;
}
bool RegisterCommand(const Command& command) {
  MutableCommands().push_back(command);
  return true;
}
const std::vector<Command>& Commands() { return MutableCommands(); }

}  // namespace candies::cli

namespace {

void PrintHelp() {
  std::printf("candies %s: spatial multi-omics denoising and integration (CANDIES)\n\n",
              CANDIES_VERSION);
  std::printf("usage: candies <command> [flags]   (candies <command> --help for flags)\n\n");
  for (const auto& c : candies::cli::Commands()) std::printf("  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    PrintHelp();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::printf("%s\n", candies::BuildInfoLine().c_str());
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : candies::cli::Commands()) {
    if (argv[1] == std::string(c.name)) return c.run(args);
  }
  std::fprintf(stderr, "candies: unknown command '%s' (candies --help lists them)\n", argv[1]);
  return 2;
}
