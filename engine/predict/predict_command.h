// `engine predict GRAPH --weights W --data SOURCE --out DIR`: dataset-level batch inference on
// unlabelled images. A TBB pipeline decodes and preprocesses the next batches while the network
// runs on the current one, and writes each predicted mask back at its image's own size. DIR gets
//   predictions.csv  image,prob,malignant,lesion_fraction,mask (one row per predicted image, in
//                    input order; prob empty for a graph without classifier, mask without mask)
//   masks/<id>.png   0/255 at the image's size, for a graph with a mask output
//   skipped.csv      path,reason of every image that could not be read (when there is one)
//   summary.json     counts, threshold and its source, throughput
//   predictions.journal  one record per finished image (engine/predict/prediction_journal.h),
//                    appended and fsync'd batch by batch; the tables above are assembled from it
// every other file written atomically. A killed job continues with resume: images already in
// the journal (same path, size and mtime) are not predicted again. Preprocessing (input size,
// normalisation) and the threshold come from the weights' metadata as for `engine eval`;
// eval.largest_region and eval.flip_tta apply as there, and data.strict stops at the first
// unreadable image instead of skipping it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <vector>

#include "engine/data/readers.h"
#include "engine/dsl/parser.h"
#include "engine/runtime/model.h"

namespace emt {

struct PredictCommandOptions {
  std::filesystem::path weights;    // a run's weights.safetensors
  std::filesystem::path source;     // a folder, a CSV manifest with an image column, or one image
  std::filesystem::path out_dir;    // created if missing
  std::optional<double> threshold;  // default: the weights' "threshold", else eval.threshold
  int64_t batch = 16;
  bool write_masks = true;
  // Continue the job whose journal is in out_dir; without it out_dir must be missing or empty.
  bool resume = false;
  Backend backend = Backend::kOnednn;
  Precision precision = Precision::kFp32;
  std::ostream* console = nullptr;   // progress and summary; null for silence
  bool console_is_terminal = false;  // progress as a bar redrawn in place
};

struct PredictCommandResult {
  int64_t predicted = 0;
  std::vector<ReadIssue> skipped;
  int64_t from_journal = 0;  // images (predicted or skipped) an earlier run had finished
  double threshold = 0.5;
  double images_per_s = 0;  // images predicted in this run over the wall time of the pipeline
};

// Throws std::invalid_argument for bad options, std::runtime_error for unreadable or mismatched
// weights, a source that lists no image, an out_dir that is not empty (without resume) or holds
// another job's journal, or (data.strict) the first unreadable image.
PredictCommandResult run_predict(const GraphFile& file, const PredictCommandOptions& options);

// File names of predictions.csv, skipped.csv, summary.json and the mask folder in DIR.
inline constexpr const char* kPredictionsFile = "predictions.csv";
inline constexpr const char* kSkippedFile = "skipped.csv";
inline constexpr const char* kPredictSummaryFile = "summary.json";
inline constexpr const char* kMaskDir = "masks";

}  // namespace emt
