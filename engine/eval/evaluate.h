// Scores a model on labelled samples: per-image results, classifier and mask metrics, and the
// objective's value (the same definition training minimises), optionally with test-time
// augmentation by a left-right mirror.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/data/preprocess.h"
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

struct EvalReport {
  bool has_cls = false, has_seg = false;
  std::vector<ImageResult> images;
  ClassificationMetrics cls;
  SegmentationMetrics seg;
  bool flip_tta = false;  // probabilities averaged with the mirrored images' (predict_batch)
  double loss = 0;        // mean objective over batches, on the images as given
  std::vector<double> loss_terms;
};

// The network's outputs for one batch (loaded with load_batch): cls holds the executor's "cls"
// output [n, ...] and seg its "seg" output [n, ...], each left empty when the graph has no such
// output. With flip_tta the images are also run mirrored left-right (the W axis of [N, C, H, W])
// and the two passes are averaged, seg after mirroring it back. The executor is left holding the
// pass on the images as given, so exec.objective() afterwards is the objective on them. The
// buffers are the caller's so that one pair serves every batch.
void predict_batch(Executor& exec, std::span<const Sample* const> samples, bool flip_tta,
                   std::vector<float>& cls, std::vector<float>& seg);

// flip_tta is the setting eval.flip_tta.
EvalReport evaluate(Model& model, std::span<const Sample> samples, std::span<const int> indices,
                    int64_t batch, double threshold, bool flip_tta = false);

// {"acc":..,"sen":..,"spe":..,"auc":..,"dsc":..,"iou":..,"loss":..,"n":..,"threshold":..,
//  "flip_tta":..}
nlohmann::json report_json(const EvalReport& report);
// One row per image: id,label,prob,predicted,dice,iou
std::string report_csv(const EvalReport& report);

}  // namespace emt
