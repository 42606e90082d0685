// Scores a model on labelled samples: per-image results, classifier and mask metrics, and the
// objective's value (the same definition training minimises), optionally with test-time
// augmentation by a left-right mirror and with only the largest predicted lesion kept.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/dsl/config.h"
#include "engine/eval/metrics.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"

namespace emt {

struct ImageResult {
  std::string id;
  int label = 0;
  float prob = 0;  // malignancy probability; NaN when the graph has no classifier
  MaskScore mask;  // NaN when the graph has no mask output
};

// How predictions are made from the network's outputs; every evaluation of one run (validation,
// test, `engine eval`) uses the same.
struct PredictOptions {
  // Probabilities averaged with the mirrored images' (eval.flip_tta).
  bool flip_tta = false;
  // Only the largest region of each predicted mask is kept (eval.largest_region,
  // keep_largest_region), after the averaging.
  bool largest_region = false;
};
PredictOptions predict_options(const Config& config);

struct EvalReport {
  bool has_cls = false, has_seg = false;
  std::vector<ImageResult> images;
  ClassificationMetrics cls;
  // Calibration of the probabilities (engine/eval/calibration.h): 10-bin expected calibration
  // error and Brier score.
  double ece = 0, brier = 0;
  SegmentationMetrics seg;
  PredictOptions predict;
  double loss = 0;  // mean objective over batches, on the images as given
  std::vector<double> loss_terms;
};

// The network's outputs for one batch (loaded with load_batch): cls holds the executor's "cls"
// output [n, ...] and seg its "seg" output [n, ...], each left empty when the graph has no such
// output. With flip_tta the images are also run mirrored left-right (the W axis of [N, C, H, W])
// and the two passes are averaged, seg after mirroring it back. The executor is left holding the
// pass on the images as given, so exec.objective() afterwards is the objective on them. With
// largest_region each mask then keeps its largest region. The buffers are the caller's so that
// one pair serves every batch.
void predict_batch(Executor& exec, std::span<const Sample* const> samples, PredictOptions options,
                   std::vector<float>& cls, std::vector<float>& seg);

EvalReport evaluate(Model& model, std::span<const Sample> samples, std::span<const int> indices,
                    int64_t batch, double threshold, PredictOptions options = {});

// {"acc":..,"sen":..,"spe":..,"auc":..,"ece":..,"brier":..,"dsc":..,"iou":..,"loss":..,"n":..,"threshold":..,
//  "flip_tta":..,"largest_region":..}
nlohmann::json report_json(const EvalReport& report);
// One row per image: id,label,prob,predicted,dice,iou
std::string report_csv(const EvalReport& report);

}  // namespace emt
