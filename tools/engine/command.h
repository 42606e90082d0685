// One row of `engine`'s command table: a subcommand, the options it takes and what runs it.
// main.cpp lists the rows; each command's file (tools/engine/commands/) defines its row.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace emt::cli {

// What main sets up for every command before it runs.
struct CommonArgs {
  int threads = 0;  // --threads; 0: all cores
};

// Runs a parsed command; throws on an error in the graph, data or run (exit status 1).
using CommandRun = std::function<void(const CommonArgs&)>;

struct Command {
  std::string name;
  std::string summary;      // one line of `engine --help`
  std::string description;  // what `engine NAME --help` prints below the options
  // Declares the command's options on its subcommand, bound to an options struct of its own,
  // and returns what runs the command with them once they are parsed. A rule the option
  // declarations cannot state is checked in a parse_complete_callback that calls refuse()
  // (options.h), so every bad command line is found before any work starts (exit status 2).
  std::function<CommandRun(CLI::App&)> define;
  std::string threads_help = "worker threads (default: all cores)";
};

}  // namespace emt::cli
