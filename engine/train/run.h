// `engine run`: train on the configured data with per-epoch validation and checkpoints, then
// score the best checkpoint on the held-out test split. Everything lands in one run directory.
#pragma once

#include <filesystem>
#include <iosfwd>

#include "engine/dsl/parser.h"
#include "engine/eval/bootstrap.h"
#include "engine/eval/evaluate.h"
#include "engine/io/run_files.h"

namespace emt {

struct RunOptions {
  std::filesystem::path out_dir;  // empty: runs/<graph>-<timestamp>
  bool resume = false;            // continue from out_dir/checkpoint.safetensors
  Backend backend = Backend::kReference;
  std::ostream* console = nullptr;  // progress and summary; null for silence
};

struct RunSummary {
  std::filesystem::path dir;
  EvalReport test;
  BootstrapResult test_ci;  // 95% intervals, as `engine eval` computes them
  int64_t best_epoch = -1;
  bool stopped_early = false;  // train.patience ended training before train.epochs
  double train_images_per_s = 0;
  double data_wait_fraction = 0;  // of the last epoch trained
};

RunSummary run_pipeline(const GraphFile& file, const RunOptions& options);

}  // namespace emt
