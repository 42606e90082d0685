// The classification threshold a run scores its test split at: eval.threshold, or, with
// eval.target_sensitivity > 0, the threshold that reaches that sensitivity on the validation
// split (threshold_for_sensitivity). Choosing it on validation keeps the test figures an honest
// estimate of the operating point on new cases, fold by fold in cross-validation.
#pragma once

#include <string>

#include "engine/dsl/parser.h"
#include "engine/eval/evaluate.h"

namespace emt {

struct RunThreshold {
  double value = 0.5;
  double target_sensitivity = 0;  // 0: value is eval.threshold
  std::string source;             // "eval.threshold" or "target sensitivity 0.9 on val"
};

// The graph has a classifier output ("cls"), whose threshold a run chooses.
bool has_classifier(const Graph& graph);

// Refuses (GraphError at the setting's line) an eval.target_sensitivity outside {0} u (0, 1], or
// one set for a graph without a classifier output. Called before a run directory exists.
void check_target_sensitivity(const GraphFile& file);

// eval.threshold, or the threshold chosen on `val` (scored at any threshold) for
// eval.target_sensitivity; then val.cls is rescored at the chosen threshold. GraphError at the
// setting's line when val has no malignant case.
RunThreshold choose_run_threshold(const Config& config, EvalReport& val);

}  // namespace emt
