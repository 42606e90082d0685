// `engine`: the command-line front end. The command table below drives parsing, `--help` (for
// each command too: `engine predict --help`) and dispatch; each command's options and glue live
// in tools/engine/commands/, the work in engine/.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "engine/runtime/threading.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace {

using emt::cli::Command;
using emt::cli::CommandRun;

std::vector<Command> command_table() {
  using namespace emt::cli;
  return {check_command(),         plan_command(),
          run_command(),           eval_command(),
          predict_command(),       export_onnx_command(),
          import_onnx_command(),   import_onnx_backbone_command(),
          import_tflite_command(), experiment_command(),
          bench_command()};
}

// Help lines stay within 100 columns: option texts start at column 30.
constexpr size_t kHelpWidth = 100;
constexpr size_t kHelpColumn = 30;

constexpr const char* kExitStatus =
    "exit status: 0 success, 1 error in the graph, data or run, 2 bad command line";

std::string command_names(const std::vector<Command>& commands) {
  std::string names;
  for (const Command& c : commands) names += (names.empty() ? "" : ", ") + c.name;
  return names;
}

int usage_error(const std::string& message, const std::string& command_line) {
  std::cerr << "engine: " << message << "\n(run '" << command_line << " --help' for usage)\n";
  return 2;
}

// The arguments CLI11 let through (it is told to allow them so that they are named here).
std::string unexpected(const std::vector<std::string>& extras) {
  const std::string& first = extras.front();
  return first.rfind('-', 0) == 0 ? "unknown option '" + first + "'"
                                  : "unexpected argument '" + first + "'";
}

void add_command(CLI::App& app, const Command& command, int& threads,
                 std::map<const CLI::App*, CommandRun>& runs) {
  CLI::App* sub = app.add_subcommand(command.name, command.summary);
  sub->group("Commands");
  sub->allow_extras();
  runs[sub] = command.define(*sub);
  sub->add_option("--threads", threads, command.threads_help)
      ->type_name("N")
      ->check(emt::cli::positive_integer());
  for (CLI::Option* option : sub->get_options())
    option->description(emt::cli::wrap(option->get_description(), kHelpWidth - kHelpColumn));
  const std::string description = emt::cli::wrap(command.description, kHelpWidth);
  sub->footer(description + (description.empty() ? "" : "\n\n") + kExitStatus);
}

// libgomp (oneDNN's threading runtime) reads its wait policy once, when it loads. By default
// its idle threads spin for 300,000 rounds, which steals the cores from TBB work between
// primitives; with no spin at all (OMP_WAIT_POLICY=passive) every primitive waits for its
// threads to wake (EMT-Net batch-1 inference on 2 threads: 9.7 ms). A short spin of 20,000
// rounds, tens of microseconds, catches the next primitive and then sleeps: 5.8 ms, with the
// same batch-16 and training throughput. The setting only takes before the process starts, so
// the engine re-executes itself once with it, unless the user chose a policy.
void ensure_short_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "20000", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run with the default policy
}

}  // namespace

int main(int argc, char** argv) {
  ensure_short_openmp_spin(argv);
  const std::vector<Command> commands = command_table();
  CLI::App app("engine: the EMT-Net dataflow engine for breast-ultrasound CAD", "engine");
  app.get_formatter()->label("SUBCOMMAND", "COMMAND");
  app.footer("run 'engine COMMAND --help' for a command's options\n" + std::string(kExitStatus));
  app.require_subcommand(1);
  app.allow_extras();
  emt::cli::CommonArgs common;
  std::map<const CLI::App*, CommandRun> runs;
  for (const Command& command : commands) add_command(app, command, common.threads, runs);

  const std::string first = argc > 1 ? argv[1] : "";
  if (first.empty())
    return usage_error("missing command (" + command_names(commands) + ")", "engine");
  const auto named = [&first](const Command& c) { return c.name == first; };
  if (first.front() != '-' && std::none_of(commands.begin(), commands.end(), named))
    return usage_error("unknown command '" + first + "' (" + command_names(commands) + ")",
                       "engine");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::vector<CLI::App*> chosen = app.get_subcommands();
    return usage_error(e.what(),
                       chosen.empty() ? "engine" : "engine " + chosen.front()->get_name());
  }
  const CLI::App* chosen = app.get_subcommands().front();
  if (!app.remaining(false).empty())  // before the command
    return usage_error(unexpected(app.remaining(false)) + " before the command " +
                           chosen->get_name() + " (options follow it)",
                       "engine " + chosen->get_name());
  if (!chosen->remaining().empty())
    return usage_error(unexpected(chosen->remaining()), "engine " + chosen->get_name());
  try {
    emt::init_threading(common.threads);
    runs.at(chosen)(common);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
