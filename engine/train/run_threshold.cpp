#include "engine/train/run_threshold.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/eval/operating_point.h"
#include "engine/runtime/batch.h"

namespace emt {
namespace {

constexpr const char* kTargetKey = "eval.target_sensitivity";

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

bool has_classifier(const Graph& graph) {
  return std::any_of(graph.outputs.begin(), graph.outputs.end(),
                     [](const GraphOutput& o) { return o.name == kClassOutput; });
}

void check_target_sensitivity(const GraphFile& file) {
  const double target = file.config.get_float(kTargetKey);
  if (target == 0) return;
  if (!(target > 0 && target <= 1))
    throw GraphError(
        file.config.where(kTargetKey),
        std::string(kTargetKey) + " = " + number(target) + ": must be 0 (off) or in (0, 1]");
  if (!has_classifier(file.graph))
    throw GraphError(file.config.where(kTargetKey),
                     std::string(kTargetKey) + " = " + number(target) + ": graph '" +
                         file.graph.name + "' has no '" + kClassOutput +
                         "' output whose threshold it could choose");
}

RunThreshold choose_run_threshold(const Config& config, EvalReport& val) {
  RunThreshold chosen;
  chosen.target_sensitivity = config.get_float(kTargetKey);
  if (chosen.target_sensitivity == 0) {
    chosen.value = config.get_float("eval.threshold");
    chosen.source = "eval.threshold";
    return chosen;
  }
  const ScoredLabels scored = scored_labels(val.images);
  chosen.value = threshold_for_sensitivity(scored.probs, scored.labels, chosen.target_sensitivity);
  if (std::isnan(chosen.value))
    throw GraphError(config.where(kTargetKey),
                     std::string(kTargetKey) + " = " + number(chosen.target_sensitivity) +
                         ": the validation split (" + std::to_string(val.images.size()) +
                         " images) has no malignant case, so no threshold reaches a sensitivity");
  chosen.source = "target sensitivity " + number(chosen.target_sensitivity) + " on val";
  val.cls = classification_metrics(scored.probs, scored.labels, chosen.value);
  return chosen;
}

}  // namespace emt
