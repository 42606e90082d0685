// Checks a backend variant against the reference kernel of its op on one case: same inference,
// same outputs and state, and gradients that accumulate into the engine's buffers as the
// reference's do.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ops/core/variant.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {

// Which gradients the variant is asked for; a skipped one is a null tensor it must not touch.
// The names are a convolution's: weight and bias are params 0 and 1 whatever the op calls them
// (batch_norm's gamma and beta). Gradients of further params are always passed, and must come
// back untouched when the reference leaves them so (batch_norm's running statistics).
struct Wanted {
  bool input = true, weight = true, bias = true;
  bool other_inputs = true;  // grad_inputs[1..]: add's second operand
};

// One forward of both ops, compared, then optionally one accumulating backward, compared.
struct Pass {
  Mode mode = Mode::kTrain;
  bool backward = true;
};

struct CheckOptions {
  Wanted wanted = {};
  std::vector<Pass> passes = {{}, {}};
  // Rewrites the random inputs before the first pass, for values U(-1, 1) never reaches:
  // relu6's kink at 6, sigmoid's saturation, batch statistics with |mean| >> std.
  std::function<void(std::vector<std::vector<float>>& inputs, std::mt19937& rng)> shape_inputs =
      nullptr;
  // Runs this instance of the variant (still owned by the caller) instead of a fresh one: an op
  // that sees several input shapes must keep their primitives apart.
  Op* op = nullptr;
  // Hands the variant every activation (inputs, outputs and their gradients) whose shape can
  // take it channel-blocked, as a compiled plan keeps them between variants that take that
  // layout (LayoutPolicy); its results are unblocked before the comparison.
  bool blocked = false;
  // Starts the first input's gradient at zero and tells the variant so
  // (BackwardArgs::zeroed_grad_inputs), as the engine does for its last reader: the variant may
  // then write instead of add. Use with a single pass (a second backward finds it non-zero).
  bool zeroed_grad_input = false;
};

// Adds a failure with a one-line repro ("<repro> <what> max_abs_err=.. tol=..") unless every
// element agrees within the variant tolerance (see variant_check.cpp).
void expect_close(const std::string& repro, const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& want);

// OpHarness::backward zeroes the gradients first; the engine does not, and neither does this.
// Activations whose shape can take it are passed in `layout`.
// zeroed_grad_inputs is passed on as BackwardArgs::zeroed_grad_inputs.
void backward_accumulating(OpHarness& h, Layout layout = Layout::kPlain,
                           uint64_t zeroed_grad_inputs = 0);

// Every value of every buffer from U(-1, 1).
void fill(std::vector<std::vector<float>>& bufs, std::mt19937& rng);

// Runs the reference and the variant on the same data, pass after pass: the later passes reuse
// the variant's cached primitives, must overwrite the outputs and add to the gradients once more.
// After every forward all outputs and params (running statistics) are compared, after every
// backward the wanted gradients and the untouched ones. `repro` is the one-line description
// printed with each failure.
void check_variant(const OpVariant& variant, const Attrs& attrs, const std::vector<Shape>& shapes,
                   const std::string& repro, uint32_t seed, const CheckOptions& options);
// Two train passes, each with a backward.
void check_variant(const OpVariant& variant, const Attrs& attrs, const std::vector<Shape>& shapes,
                   const std::string& repro, uint32_t seed, Wanted wanted = {});

// For a fused activation: two eval forwards (the activation is forward only), with the first
// input scaled by 8 so that relu6 clips.
CheckOptions activation_options();

// Runs `check` once for each subset of the gradients an op with a weight and a bias must be able
// to skip (input; weight; bias; weight and bias; input and weight), with seeds 1 to 5.
void check_skipped_gradients(const std::function<void(uint32_t seed, Wanted wanted)>& check);

// Runs one instance of the variant forward on each input shape in turn (the first input; the
// params from the reference), each compared with a fresh reference op on the same data from a
// fixed seed: an op that sees several shapes must keep their primitives apart. Each case is the
// repro and the input's shape.
void check_forward_per_shape(const OpVariant& variant, const Attrs& attrs,
                             const std::vector<std::pair<std::string, Shape>>& cases);

}  // namespace emt::test
