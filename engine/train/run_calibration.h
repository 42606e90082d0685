// Temperature scaling of a run's classifier (eval.calibrate): the temperature is fitted on the
// validation split and folded into the layer that computes the classifier's logit (its weight
// and bias divided by T), so every consumer of the weights file — eval, predict, ONNX export,
// graph2mobile — gives calibrated probabilities without knowing about it.
#pragma once

#include "engine/eval/evaluate.h"
#include "engine/runtime/model.h"

namespace emt {

struct RunCalibration {
  double temperature = 1;
  double val_ece_before = 0;  // of `val` as given; the caller rescores val for the ECE after
};

// Fits T on `val` (scored by `model`) and divides the logit layer's parameters in `model` by it;
// rankings, and so AUC, do not change. Throws GraphError when the classifier output is not
// sigmoid(dense or conv2d with a bias).
RunCalibration calibrate_classifier(Model& model, const EvalReport& val);

}  // namespace emt
