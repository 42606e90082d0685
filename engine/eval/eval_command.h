// `engine eval GRAPH --weights W --data D --out DIR`: scores trained weights on a dataset and
// writes an evaluation directory: metrics.json (with 95% bootstrap intervals), per_image.csv,
// roc.png and overlays/ (the best and worst images by Dice), every file written atomically.
//
// The weights' metadata (as `engine run` writes it) supplies the normalisation and, unless the
// options give one, the threshold; its input_size must match the graph's data.input_size
// (weights_settings() gives the command line the settings to parse the graph with).
//
// By default every image of the dataset is scored (an external test set); split "train", "val"
// or "test" scores only that part of the seeded split. With a target sensitivity the threshold
// is chosen on the val split and the test split is reported at it, next to the test figures at
// the default threshold.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/eval/bootstrap.h"
#include "engine/eval/evaluate.h"
#include "engine/eval/operating_point.h"
#include "engine/eval/trained_weights.h"

namespace emt {

struct EvalCommandOptions {
  std::filesystem::path weights;    // a run's weights.safetensors
  std::filesystem::path out_dir;    // created if missing
  std::optional<double> threshold;  // default: the weights' "threshold", else eval.threshold
  std::optional<double> target_sensitivity;  // in (0, 1]: choose the threshold on val
  std::string split = "all";                 // "all", "train", "val" or "test"
  Backend backend = Backend::kReference;
  // kBf16: the network runs in bf16 where oneDNN can (CompileOptions::precision); metrics are
  // computed in f32 from its outputs as ever.
  Precision precision = Precision::kFp32;
  int bootstrap_resamples = 2000;
  uint64_t bootstrap_seed = 42;
  int overlays = 4;                 // best and worst images by Dice drawn, each
  std::ostream* console = nullptr;  // progress and summary; null for silence
};

struct EvalCommandResult {
  std::filesystem::path dir;
  std::string split;  // the split reported ("test" with a target sensitivity)
  double threshold = 0.5;
  EvalReport report;  // the reported images, classified at threshold
  BootstrapResult ci;
  std::optional<OperatingPoint> operating_point;
  nlohmann::json metrics;  // as written to metrics.json
};

// Throws std::invalid_argument for bad options, std::runtime_error for unreadable or mismatched
// weights, GraphError for bad data settings. Nothing is written unless weights and data load.
EvalCommandResult run_eval(const GraphFile& file, const EvalCommandOptions& options);

// The files an evaluation directory holds besides metrics.json and per_image.csv.
inline constexpr const char* kRocPlotFile = "roc.png";
inline constexpr const char* kReliabilityPlotFile = "reliability.png";
inline constexpr const char* kOverlayDir = "overlays";

}  // namespace emt
