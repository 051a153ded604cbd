// Subcommands register themselves: each src/cli/cmd_*.cc defines one `Command` at namespace scope, e.g.
//   static const lowbit::cli::Command kInspect{"inspect", "describe a model file", setup_inspect};
// The setup function adds options to its CLI11 subcommand and returns what to run after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace lowbit::cli {

using Run = std::function<int()>;
using Setup = std::function<Run(CLI::App& sub)>;

struct Command {
  Command(std::string name, std::string description, Setup setup);
};

struct CommandEntry {
  std::string name;
  std::string description;
  Setup setup;
};
std::vector<CommandEntry>& command_registry();

}  // namespace lowbit::cli
