// `engine run`: train, validate every epoch, score the best epoch on the test split.
#include "engine/train/run.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "engine/dsl/parser.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/commands/dispatch.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct RunArgs {
  std::string graph, out;
  std::vector<std::string> sets;
  bool resume = false, quiet = false, verbose_dispatch = false;
  Backend backend = Backend::kOnednn;
  Precision precision = Precision::kFp32;
};

// Training is fp32 only; --precision is taken to say so and what to do instead.
Precision fp32_only(const std::string& name) {
  if (parse_precision(name) == Precision::kFp32) return Precision::kFp32;
  throw std::invalid_argument(
      "bf16 is for inference only and engine run trains in fp32; evaluate the run's weights "
      "with: engine eval GRAPH --weights RUN/weights.safetensors --precision bf16");
}

CommandRun define(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  add_graph(app, args->graph);
  add_settings(app, args->sets);
  CLI::Option* out =
      app.add_option("-o,--out", args->out,
                     "run directory (default: output.dir, or runs/<graph>-<timestamp>)")
          ->type_name("DIR");
  app.add_flag("--resume", args->resume, "continue the run in --out DIR from its last checkpoint")
      ->needs(out);
  add_backend(app, args->backend);
  add_verbose_dispatch(app, args->verbose_dispatch);
  add_precision(app, args->precision,
                "fp32 only: training, and so engine run, stays fp32 (evaluate a run's weights "
                "with eval --precision bf16)",
                &fp32_only);
  add_quiet(app, args->quiet);
  return [args](const CommonArgs&) {
    const GraphFile file = parse_graph_file(args->graph, args->sets);
    if (args->verbose_dispatch)
      print_dispatch(std::make_shared<const Graph>(file.graph), 1, args->backend, args->precision);
    RunOptions options;
    options.out_dir = args->out.empty() ? file.config.get_string("output.dir") : args->out;
    options.resume = args->resume;
    options.backend = args->backend;
    options.console = args->quiet ? nullptr : &std::cerr;
    run_pipeline(file, options);
  };
}

}  // namespace

Command run_command() {
  return {"run", "train, validate every epoch, score the best epoch on the test split",
          "train on [data] (default: the generated phantom set), validate every epoch, then "
          "score the best epoch on the held-out test split; writes a run directory "
          "(config.toml, log.txt, history.csv, metrics.json, per_image.csv, "
          "weights.safetensors, checkpoint.safetensors)",
          define};
}

}  // namespace emt::cli
