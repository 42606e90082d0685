// `engine check` and `engine plan`: compile the graph file and print its summary or its plan.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "engine/compiler/plan_report.h"
#include "engine/dsl/parser.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/commands/dispatch.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct InspectArgs {
  std::string graph;
  std::vector<std::string> sets;
  int64_t batch = 1;
  Backend backend = Backend::kOnednn;
  bool verbose_dispatch = false;
  Precision precision = Precision::kFp32;
};

using Report = std::string (*)(const Program&);

CommandRun define(CLI::App& app, Report report) {
  auto args = std::make_shared<InspectArgs>();
  add_graph(app, args->graph);
  add_settings(app, args->sets);
  app.add_option("--batch", args->batch, "batch size of the compiled plan (default 1)")
      ->type_name("N")
      ->check(positive_integer());
  add_backend(app, args->backend);
  CLI::Option* verbose = add_verbose_dispatch(app, args->verbose_dispatch);
  add_precision(app, args->precision,
                "fp32 (default) or bf16; with --verbose=dispatch, bf16 shows the fused bf16 "
                "inference plan, dtype per value")
      ->needs(verbose);
  return [args, report](const CommonArgs&) {
    const GraphFile file = parse_graph_file(args->graph, args->sets);
    auto graph = std::make_shared<const Graph>(file.graph);
    if (args->verbose_dispatch) print_dispatch(graph, args->batch, args->backend, args->precision);
    std::cout << report(compile(graph, args->batch, args->backend));
  };
}

Command inspect_command(std::string name, std::string summary, std::string description,
                        Report report) {
  return {std::move(name), std::move(summary), std::move(description),
          [report](CLI::App& app) { return define(app, report); }};
}

}  // namespace

Command check_command() {
  return inspect_command(
      "check", "validate the graph file and print a summary",
      "validate the graph file (includes, blocks, names, shapes) and print a summary",
      &format_summary);
}

Command plan_command() {
  return inspect_command("plan", "print the execution plan: every op, its cost, the memory",
                         "print every op with its output shape, parameters and FLOPs, the totals, "
                         "and the activation memory the plan needs",
                         &format_plan);
}

}  // namespace emt::cli
