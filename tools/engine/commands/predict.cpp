// `engine predict`: batch inference on unlabelled images (engine/predict/predict_command.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>

#include "engine/eval/trained_weights.h"
#include "engine/predict/predict_command.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct PredictArgs {
  std::string graph, weights, out;
  std::vector<std::string> sets;
  std::optional<double> threshold;
  int64_t batch = 16;
  bool no_masks = false, resume = false, quiet = false;
  Backend backend = Backend::kOnednn;
  Precision precision = Precision::kFp32;
};

CommandRun define(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  add_graph(app, args->graph);
  app.add_option("--weights", args->weights, "the trained weights (a run's weights.safetensors)")
      ->type_name("W")
      ->required();
  app.add_option("-o,--out", args->out,
                 "the job directory: empty or missing, or with --resume the job to continue")
      ->type_name("DIR")
      ->required();
  add_settings(app, args->sets);
  add_threshold(app, args->threshold);
  app.add_option("--batch", args->batch, "images per pass (default 16)")
      ->type_name("N")
      ->check(positive_integer());
  app.add_flag("--no-masks", args->no_masks,
               "write no mask files (predictions.csv still has lesion_fraction)");
  app.add_flag("--resume", args->resume,
               "continue the job in --out DIR, skipping the images in its journal");
  add_backend(app, args->backend);
  add_precision(app, args->precision, kInferencePrecisionHelp);
  add_quiet(app, args->quiet);
  app.parse_complete_callback([args] {
    // --set data.source=SOURCE serves as well as --data SOURCE.
    if (std::none_of(args->sets.begin(), args->sets.end(),
                     [](const std::string& set) { return set.rfind("data.source=", 0) == 0; }))
      refuse("predict needs --data SOURCE (the images to predict)");
  });
  return [args](const CommonArgs&) {
    const GraphFile file = parse_graph_for_weights(args->graph, args->weights, args->sets);
    PredictCommandOptions options;
    options.weights = args->weights;
    options.source = file.config.get_string("data.source");
    options.out_dir = args->out;
    options.threshold = args->threshold;
    options.batch = args->batch;
    options.write_masks = !args->no_masks;
    options.resume = args->resume;
    options.console_is_terminal = isatty(STDERR_FILENO) == 1;
    options.backend = args->backend;
    options.precision = args->precision;
    options.console = args->quiet ? nullptr : &std::cerr;
    run_predict(file, options);
  };
}

}  // namespace

Command predict_command() {
  return {
      "predict", "batch inference on unlabelled images",
      "batch inference on unlabelled images: SOURCE (--data) is a folder (every .png, .jpg, "
      ".jpeg, .bmp below it except <name>_mask*.ext files), a CSV with an image column, or one "
      "image. Decoding overlaps the network (TBB pipeline, --batch images per pass, default 16); "
      "writes predictions.csv (image, prob, malignant, lesion_fraction, mask), masks/<image>.png "
      "at each image's own size, skipped.csv for unreadable files (--set data.strict=true stops "
      "at the first instead) and summary.json. Input size, normalisation and threshold come from "
      "the weights; eval.largest_region and eval.flip_tta apply. Kill-safe: every finished batch "
      "is appended to DIR/predictions.journal (fsync'd, each record checksummed) and the tables "
      "are assembled from it at the end. DIR must be empty or missing; --resume continues the "
      "job whose journal DIR holds, predicting only the images not in it (an image is the same "
      "when its absolute path, size and modification time are)",
      define};
}

}  // namespace emt::cli
