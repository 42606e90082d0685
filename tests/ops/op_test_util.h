// Harness shared by every op test: run an op on owned buffers, and check its backward kernel
// against central finite differences of a random linear functional of its outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ops/core/op.h"

namespace emt::test {

// Owns the buffers of one op invocation: inputs, params, outputs and all gradients.
struct OpHarness {
  std::unique_ptr<Op> op;
  Inferred inferred;
  std::vector<std::vector<float>> inputs, params, outputs;
  std::vector<std::vector<float>> grad_inputs, grad_params, grad_outputs;
  std::vector<Shape> input_shapes;

  OpHarness(const std::string& op_name, const Attrs& attrs, std::vector<Shape> shapes);

  void forward(Mode mode = Mode::kTrain, uint64_t seed = 7);
  // Zeroes all input/param gradients, then runs backward with the current grad_outputs.
  void backward();

  // Fills inputs and params with U(lo, hi); running variances stay positive.
  void randomize(std::mt19937& rng, float lo = -1.0f, float hi = 1.0f);
};

struct GradCheckOptions {
  float step = 1e-3f;
  // Float32 forward passes round at ~1e-7 relative; divided by 2*step that is ~1e-4 of the
  // output magnitude, so 2e-2 relative / 2e-3 absolute leaves a wide margin without hiding
  // a wrong formula (a wrong gradient is off by O(1)).
  float rtol = 2e-2f;
  float atol = 2e-3f;
  // Elements checked per tensor (evenly spaced); bounds the test's time on larger shapes.
  int64_t max_checks_per_tensor = 64;
  Mode mode = Mode::kTrain;
  // Inputs are pushed at least this far from 0, so that a perturbation never crosses the kink
  // of relu-like ops (where the derivative jumps and finite differences are meaningless).
  float kink_margin = 0.0f;
};

struct GradCheckResult {
  bool ok = true;
  float max_abs_err = 0;
  std::string worst;  // "input 0 [17]: analytic 0.12 numeric 0.37" for the worst element
};

// Random inputs and params from rng, then compares analytic against numeric gradients of
// L = sum(out * r) for every input and every trainable param.
GradCheckResult check_gradients(OpHarness& h, std::mt19937& rng, const GradCheckOptions& opt = {});

// "conv2d in=[1,3,7,7] kernel=3 stride=2": one line that reproduces a failing case.
std::string describe_case(const std::string& op_name, const Attrs& attrs,
                          const std::vector<Shape>& shapes);

}  // namespace emt::test
