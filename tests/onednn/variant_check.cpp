#include "tests/onednn/variant_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

// Both kernels sum the same float32 terms in different orders (oneDNN blocks and vectorises
// across channels and positions). With operands in [-1, 1], each term is at most 1 and the
// longest sums here have a few hundred terms (weight gradient: N*Ho*Wo <= 3*13*17 = 663);
// rounding differences then grow like sqrt(terms) * 6e-8 * |partial sums|, around 1e-5 at
// worst (observed: 1.2e-5 of 1 + |ref|), while a wrong index or a lost accumulation is off by
// O(1). 1e-4 relative to the magnitude (plus 1 for the values near 0 that cancellation
// produces) sits between the two.
constexpr float kTol = 1e-4f;

struct Comparison {
  float max_abs_err = 0;
  bool ok = true;
};

Comparison compare(const std::vector<float>& got, const std::vector<float>& want) {
  Comparison r;
  if (got.size() != want.size()) return {INFINITY, false};
  for (size_t i = 0; i < got.size(); ++i) {
    const float err = std::abs(got[i] - want[i]);
    r.max_abs_err = std::max(r.max_abs_err, err);
    if (!(err <= kTol * (1 + std::abs(want[i])))) r.ok = false;  // NaN fails too
  }
  return r;
}

}  // namespace

void expect_close(const std::string& repro, const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& want) {
  const Comparison r = compare(got, want);
  if (r.ok) return;
  char line[256];
  std::snprintf(line, sizeof line, "%s %s max_abs_err=%.2g tol=%.0e", repro.c_str(), what.c_str(),
                r.max_abs_err, kTol);
  ADD_FAILURE() << line;
}

namespace {

// Views of buffers; with kChannelBlocked, those whose shape can take it say so (their data
// must then be blocked).
std::vector<Tensor> views(std::vector<std::vector<float>>& bufs, const std::vector<Shape>& shapes,
                          Layout layout = Layout::kPlain) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < bufs.size(); ++i)
    out.push_back({bufs[i].empty() ? nullptr : bufs[i].data(), shapes[i],
                   can_block_channels(shapes[i]) ? layout : Layout::kPlain});
  return out;
}

std::vector<Shape> param_shapes(const OpHarness& h) {
  std::vector<Shape> shapes;
  for (const ParamSpec& p : h.inferred.params) shapes.push_back(p.shape);
  return shapes;
}

void forward_in_layout(OpHarness& h, Mode mode, Layout layout) {
  const std::vector<Shape> params = param_shapes(h);
  auto in = views(h.inputs, h.input_shapes, layout);
  auto pa = views(h.params, params);
  auto out = views(h.outputs, h.inferred.outputs, layout);
  h.op->forward({in, pa, out, mode, 7});
}

// Converts the blockable buffers between the plain and the blocked layout.
void reblock(std::vector<std::vector<float>>& bufs, const std::vector<Shape>& shapes,
             bool to_blocked) {
  for (size_t i = 0; i < bufs.size(); ++i) {
    if (bufs[i].empty() || !can_block_channels(shapes[i])) continue;
    std::vector<float> converted(bufs[i].size());
    if (to_blocked)
      block_channels(bufs[i].data(), shapes[i], converted.data());
    else
      unblock_channels(bufs[i].data(), shapes[i], converted.data());
    bufs[i] = std::move(converted);
  }
}

// The buffer as plain data, from a blocked one when `blocked` and its shape can take it.
std::vector<float> plain(const std::vector<float>& buf, const Shape& shape, bool blocked) {
  if (!blocked || buf.empty() || !can_block_channels(shape)) return buf;
  std::vector<float> out(buf.size());
  unblock_channels(buf.data(), shape, out.data());
  return out;
}

}  // namespace

void backward_accumulating(OpHarness& h, Layout layout, uint64_t zeroed_grad_inputs) {
  const std::vector<Shape> params = param_shapes(h);
  auto in = views(h.inputs, h.input_shapes, layout);
  auto pa = views(h.params, params);
  auto out = views(h.outputs, h.inferred.outputs, layout);
  auto gout = views(h.grad_outputs, h.inferred.outputs, layout);
  auto gin = views(h.grad_inputs, h.input_shapes, layout);
  auto gpa = views(h.grad_params, params);
  h.op->backward({in, pa, out, gout, gin, gpa, std::nullopt, zeroed_grad_inputs});
}

void fill(std::vector<std::vector<float>>& bufs, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& b : bufs)
    for (float& v : b) v = dist(rng);
}

void check_variant(const OpVariant& variant, const Attrs& attrs, const std::vector<Shape>& shapes,
                   const std::string& repro, uint32_t seed, const CheckOptions& options) {
  OpHarness ref(variant.op, attrs, shapes);
  OpHarness var(variant.op, attrs, shapes);
  ASSERT_EQ(variant.supports(attrs, shapes), "") << repro;
  // Hands a borrowed op back to its owner on every way out, the ASSERTs' early returns included.
  struct Lent {
    OpHarness& h;
    bool borrowed;
    ~Lent() {
      if (borrowed) static_cast<void>(h.op.release());
    }
  } lent{var, options.op != nullptr};
  if (options.op)
    var.op.reset(options.op);
  else
    var.op = variant.create(attrs);

  const Inferred inferred = var.op->infer(shapes);
  EXPECT_EQ(inferred.outputs, ref.inferred.outputs) << repro;
  EXPECT_EQ(inferred.macs_per_sample, ref.inferred.macs_per_sample) << repro;
  ASSERT_EQ(inferred.params.size(), ref.inferred.params.size()) << repro;
  for (size_t i = 0; i < inferred.params.size(); ++i) {
    EXPECT_EQ(inferred.params[i].name, ref.inferred.params[i].name);
    EXPECT_EQ(inferred.params[i].shape, ref.inferred.params[i].shape);
    EXPECT_EQ(inferred.params[i].fan_in, ref.inferred.params[i].fan_in);
  }

  const Wanted& wanted = options.wanted;
  auto input_wanted = [&](size_t i) { return i == 0 ? wanted.input : wanted.other_inputs; };
  auto param_wanted = [&](size_t i) {
    return i == 0 ? wanted.weight : i == 1 ? wanted.bias : true;
  };

  std::mt19937 rng(seed);
  ref.randomize(rng);  // U(-1, 1), but running variances stay positive
  if (options.shape_inputs) options.shape_inputs(ref.inputs, rng);
  fill(ref.grad_outputs, rng);
  fill(ref.grad_inputs, rng);  // what earlier consumers already accumulated
  if (options.zeroed_grad_input)
    std::fill(ref.grad_inputs[0].begin(), ref.grad_inputs[0].end(), 0.0f);
  fill(ref.grad_params, rng);
  fill(var.outputs, rng);  // forward must overwrite, not add
  var.inputs = ref.inputs;
  var.params = ref.params;
  var.grad_outputs = ref.grad_outputs;
  var.grad_inputs = ref.grad_inputs;
  var.grad_params = ref.grad_params;
  for (size_t i = 0; i < var.grad_inputs.size(); ++i)
    if (!input_wanted(i)) var.grad_inputs[i].clear();
  for (size_t i = 0; i < var.grad_params.size(); ++i)
    if (!param_wanted(i)) var.grad_params[i].clear();
  const Layout layout = options.blocked ? Layout::kChannelBlocked : Layout::kPlain;
  if (options.blocked) {
    reblock(var.inputs, var.input_shapes, true);
    reblock(var.grad_inputs, var.input_shapes, true);
    reblock(var.grad_outputs, var.inferred.outputs, true);
  }

  auto index = [](const char* what, size_t i) {
    return i == 0 ? std::string(what) : what + std::to_string(i);
  };
  int pass = 0;
  for (const Pass& step : options.passes) {
    const std::string p = std::string(step.mode == Mode::kTrain ? " train" : " eval") + " pass" +
                          std::to_string(++pass);
    ref.forward(step.mode);
    forward_in_layout(var, step.mode, layout);
    for (size_t o = 0; o < ref.outputs.size(); ++o)
      expect_close(repro, index("output", o) + p,
                   plain(var.outputs[o], ref.inferred.outputs[o], options.blocked), ref.outputs[o]);
    for (size_t i = 0; i < ref.params.size(); ++i)
      expect_close(repro, ref.inferred.params[i].name + p, var.params[i], ref.params[i]);
    if (!step.backward) continue;
    backward_accumulating(ref);
    backward_accumulating(var, layout, options.zeroed_grad_input ? 1 : 0);
    for (size_t i = 0; i < ref.grad_inputs.size(); ++i)
      if (input_wanted(i))
        expect_close(repro, index("grad_input", i) + p,
                     plain(var.grad_inputs[i], var.input_shapes[i], options.blocked),
                     ref.grad_inputs[i]);
    for (size_t i = 0; i < ref.grad_params.size(); ++i)
      if (param_wanted(i))
        expect_close(repro, "grad_" + ref.inferred.params[i].name + p, var.grad_params[i],
                     ref.grad_params[i]);
  }
}

void check_variant(const OpVariant& variant, const Attrs& attrs, const std::vector<Shape>& shapes,
                   const std::string& repro, uint32_t seed, Wanted wanted) {
  check_variant(variant, attrs, shapes, repro, seed, CheckOptions{.wanted = wanted});
}

CheckOptions activation_options() {
  return {.passes = {{Mode::kEval, false}, {Mode::kEval, false}},
          .shape_inputs = [](std::vector<std::vector<float>>& inputs, std::mt19937&) {
            for (float& v : inputs[0]) v *= 8.0f;
          }};
}

void check_skipped_gradients(const std::function<void(uint32_t seed, Wanted wanted)>& check) {
  check(1, {.input = false});
  check(2, {.weight = false});
  check(3, {.bias = false});
  check(4, {.weight = false, .bias = false});
  check(5, {.input = false, .weight = false});
}

void check_forward_per_shape(const OpVariant& variant, const Attrs& attrs,
                             const std::vector<std::pair<std::string, Shape>>& cases) {
  const std::unique_ptr<Op> op = variant.create(attrs);
  for (const auto& [repro, shape] : cases) {
    OpHarness ref(variant.op, attrs, {shape});
    std::mt19937 rng(7);
    fill(ref.inputs, rng);
    fill(ref.params, rng);
    ref.forward();
    std::vector<float> out(ref.outputs[0].size());
    std::vector<Tensor> in = {{ref.inputs[0].data(), shape}};
    std::vector<Tensor> params;
    for (size_t i = 0; i < ref.params.size(); ++i)
      params.push_back({ref.params[i].data(), ref.inferred.params[i].shape});
    std::vector<Tensor> outs = {{out.data(), ref.inferred.outputs[0]}};
    op->forward({in, params, outs});
    expect_close(repro, "output", out, ref.outputs[0]);
  }
}

}  // namespace emt::test
