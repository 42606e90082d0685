// Scores a model on labelled samples: per-image results, classifier and mask metrics, and the
// objective's value (the same definition training minimises).
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/eval/metrics.h"
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
  double loss = 0;  // mean objective over batches
  std::vector<double> loss_terms;
};

EvalReport evaluate(Model& model, std::span<const Sample> samples, std::span<const int> indices,
                    int64_t batch, double threshold);

// {"acc":..,"sen":..,"spe":..,"auc":..,"dsc":..,"iou":..,"loss":..,"n":..,"threshold":..}
nlohmann::json report_json(const EvalReport& report);
// One row per image: id,label,prob,predicted,dice,iou
std::string report_csv(const EvalReport& report);

}  // namespace emt
