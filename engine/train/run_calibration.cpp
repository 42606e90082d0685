#include "engine/train/run_calibration.h"

#include "engine/eval/calibration.h"
#include "engine/eval/operating_point.h"
#include "engine/runtime/batch.h"

namespace emt {
namespace {

const Node& producer(const Graph& graph, const std::string& value) {
  const std::string name = resolve_alias(graph, value);
  for (const Node& node : graph.nodes)
    if (node.name == name) return node;
  throw GraphError(graph.loc, "eval.calibrate: no node computes '" + name + "'");
}

// The node whose output is the classifier's logit: the input of the sigmoid behind "cls".
const Node& logit_layer(const Graph& graph) {
  for (const GraphOutput& out : graph.outputs) {
    if (out.name != kClassOutput) continue;
    const Node& sigmoid = producer(graph, out.value);
    if (sigmoid.id == OpId::sigmoid) {
      const Node& logit = producer(graph, sigmoid.inputs.at(0));
      if ((logit.id == OpId::dense || logit.id == OpId::conv2d) && logit.attrs.get_bool("bias"))
        return logit;
    }
    throw GraphError(out.loc, "eval.calibrate needs the '" + out.name +
                                  "' output to be the sigmoid of a dense or conv2d layer with a "
                                  "bias, into which the temperature is folded");
  }
  throw GraphError(
      graph.loc, "eval.calibrate: graph '" + graph.name + "' has no '" + kClassOutput + "' output");
}

}  // namespace

RunCalibration calibrate_classifier(Model& model, const EvalReport& val) {
  const Node& logit = logit_layer(model.graph());
  const ScoredLabels scored = scored_labels(val.images);
  RunCalibration calibration;
  calibration.val_ece_before = expected_calibration_error(scored.probs, scored.labels);
  calibration.temperature = fit_temperature(scored.probs, scored.labels);
  for (const char* param : {".weight", ".bias"})
    for (float& v : model.params().at(logit.name + param).value)
      v = static_cast<float>(v / calibration.temperature);
  model.params().mark_updated();
  return calibration;
}

}  // namespace emt
