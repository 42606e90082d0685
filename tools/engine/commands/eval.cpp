// `engine eval`: score trained weights on a labelled dataset (engine/eval/eval_command.h).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "engine/eval/eval_command.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct EvalArgs {
  std::string graph, weights, out;
  std::vector<std::string> sets;
  std::optional<double> threshold, target_sensitivity;
  std::string split = "all";
  int bootstrap = 2000;
  Backend backend = Backend::kOnednn;
  Precision precision = Precision::kFp32;
  bool quiet = false;
};

CommandRun define(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  add_graph(app, args->graph);
  app.add_option("--weights", args->weights, "the trained weights (a run's weights.safetensors)")
      ->type_name("W")
      ->required();
  app.add_option("-o,--out", args->out, "the evaluation directory to write")
      ->type_name("DIR")
      ->required();
  add_settings(app, args->sets);
  add_threshold(app, args->threshold);
  app.add_option_function<double>(
         "--target-sensitivity", [args](double s) { args->target_sensitivity = s; },
         "choose the threshold reaching sensitivity S on the val split and report the test "
         "split at it (and at the default threshold)")
      ->type_name("S")
      ->check(number_in(0, 1, true));
  app.add_option("--split", args->split, "all (default), train, val or test")
      ->type_name("NAME")
      ->check(one_of({"all", "train", "val", "test"}));
  app.add_option("--bootstrap", args->bootstrap,
                 "bootstrap resamples for the 95% intervals (default 2000)")
      ->type_name("N")
      ->check(positive_integer());
  add_backend(app, args->backend);
  add_precision(app, args->precision, kInferencePrecisionHelp);
  add_quiet(app, args->quiet);
  app.parse_complete_callback([args] {
    if (args->target_sensitivity && args->split != "all" && args->split != "test")
      refuse(
          "--target-sensitivity chooses the threshold on val and reports test; it cannot be "
          "combined with --split " +
          args->split);
  });
  return [args](const CommonArgs&) {
    // run_eval refuses a --set data.input_size that contradicts the weights.
    const GraphFile file = parse_graph_for_weights(args->graph, args->weights, args->sets);
    EvalCommandOptions options;
    options.weights = args->weights;
    options.out_dir = args->out;
    options.threshold = args->threshold;
    options.target_sensitivity = args->target_sensitivity;
    options.split = args->split;
    options.backend = args->backend;
    options.precision = args->precision;
    options.bootstrap_resamples = args->bootstrap;
    options.console = args->quiet ? nullptr : &std::cerr;
    run_eval(file, options);
  };
}

}  // namespace

Command eval_command() {
  return {"eval", "score trained weights on a labelled dataset",
          "score trained weights on a dataset (every image unless --split says which part of the "
          "seeded split); writes metrics.json (acc, sen, spe, auc, dsc, iou with 95% bootstrap "
          "intervals), per_image.csv, roc.png and overlays/ (best and worst 4 by Dice). Input "
          "size, normalisation and threshold come from the weights",
          define};
}

}  // namespace emt::cli
