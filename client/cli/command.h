// Subcommands of the `candies` CLI register themselves here, one per cmd_*.cc,
// so that adding a command touches no shared file.
#pragma once

#include <string>
#include <vector>

namespace candies::cli {

struct Command {
  const char* name;     // "inspect", "run", ...
  const char* summary;  // one line for `candies --help`
  // Receives the arguments after the subcommand name; returns the exit code.
  int (*run)(const std::vector<std::string>& args);
};

// Registers at static-initialisation time; returns true so it can seed a static.
bool RegisterCommand(const Command& command);
const std::vector<Command>& Commands();

}  // namespace candies::cli

#define CANDIES_CLI_COMMAND(ident, name, summary, fn)      \
  static const bool candies_cli_registered_##ident =       \
      ::candies::cli::RegisterCommand({name, summary, fn})
