#include "tests/ops/op_test_util.h"

#include <algorithm>
#include <cmath>

#include "ops/registry.h"

namespace emt::test {
namespace {

std::vector<Tensor> views(std::vector<std::vector<float>>& bufs, const std::vector<Shape>& shapes) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < bufs.size(); ++i)
    out.push_back({bufs[i].empty() ? nullptr : bufs[i].data(), shapes[i]});
  return out;
}

std::vector<Shape> param_shapes(const Inferred& inf) {
  std::vector<Shape> shapes;
  for (const ParamSpec& p : inf.params) shapes.push_back(p.shape);
  return shapes;
}

std::vector<std::vector<float>> alloc(const std::vector<Shape>& shapes) {
  std::vector<std::vector<float>> bufs;
  for (const Shape& s : shapes) bufs.emplace_back(static_cast<size_t>(shape_numel(s)), 0.0f);
  return bufs;
}

}  // namespace

OpHarness::OpHarness(const std::string& op_name, const Attrs& attrs, std::vector<Shape> shapes)
    : op(create_op(op_name, attrs)), input_shapes(std::move(shapes)) {
  inferred = op->infer(input_shapes);
  inputs = alloc(input_shapes);
  grad_inputs = alloc(input_shapes);
  params = alloc(param_shapes(inferred));
  grad_params = alloc(param_shapes(inferred));
  outputs = alloc(inferred.outputs);
  grad_outputs = alloc(inferred.outputs);
}

void OpHarness::forward(Mode mode, uint64_t seed) {
  auto in = views(inputs, input_shapes);
  auto pa = views(params, param_shapes(inferred));
  auto out = views(outputs, inferred.outputs);
  op->forward({in, pa, out, mode, seed});
}

void OpHarness::backward() {
  for (auto& g : grad_inputs) std::fill(g.begin(), g.end(), 0.0f);
  for (auto& g : grad_params) std::fill(g.begin(), g.end(), 0.0f);
  auto in = views(inputs, input_shapes);
  auto pa = views(params, param_shapes(inferred));
  auto out = views(outputs, inferred.outputs);
  auto gout = views(grad_outputs, inferred.outputs);
  auto gin = views(grad_inputs, input_shapes);
  auto gpa = views(grad_params, param_shapes(inferred));
  op->backward({in, pa, out, gout, gin, gpa});
}

void OpHarness::randomize(std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  for (auto& b : inputs)
    for (float& v : b) v = dist(rng);
  for (size_t i = 0; i < params.size(); ++i) {
    const bool variance = inferred.params[i].name == "running_var";
    for (float& v : params[i]) v = variance ? 0.5f + std::abs(dist(rng)) : dist(rng);
  }
}

GradCheckResult check_gradients(OpHarness& h, std::mt19937& rng, const GradCheckOptions& opt) {
  h.randomize(rng);
  for (auto& b : h.inputs)
    for (float& v : b) v = v < 0 ? v - opt.kink_margin : v + opt.kink_margin;
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& g : h.grad_outputs)
    for (float& v : g) v = dist(rng);

  // Snapshot params: train-mode batch norm moves its running statistics on every forward.
  auto params_at_start = h.params;
  auto loss = [&]() {
    h.params = params_at_start;
    h.forward(opt.mode);
    double sum = 0;
    for (size_t o = 0; o < h.outputs.size(); ++o)
      for (size_t i = 0; i < h.outputs[o].size(); ++i)
        sum += static_cast<double>(h.outputs[o][i]) * h.grad_outputs[o][i];
    return sum;
  };
  loss();
  h.backward();

  GradCheckResult result;
  auto check_tensor = [&](std::vector<float>& values, const std::vector<float>& analytic,
                          const std::string& label) {
    const int64_t n = static_cast<int64_t>(values.size());
    const int64_t stride = std::max<int64_t>(1, n / opt.max_checks_per_tensor);
    for (int64_t i = 0; i < n; i += stride) {
      const float saved = values[i];
      values[i] = saved + opt.step;
      const double plus = loss();
      values[i] = saved - opt.step;
      const double minus = loss();
      values[i] = saved;
      const float numeric = static_cast<float>((plus - minus) / (2.0 * opt.step));
      const float err = std::abs(numeric - analytic[i]);
      const float tol = opt.atol + opt.rtol * std::max(std::abs(numeric), std::abs(analytic[i]));
      if (err > result.max_abs_err) {
        result.max_abs_err = err;
        result.worst = label + " [" + std::to_string(i) + "]: analytic " +
                       std::to_string(analytic[i]) + " numeric " + std::to_string(numeric);
      }
      if (err > tol) result.ok = false;
    }
  };
  // Param perturbations go through params_at_start, which loss() copies into h.params.
  auto& base = params_at_start;
  for (size_t i = 0; i < h.inputs.size(); ++i)
    check_tensor(h.inputs[i], h.grad_inputs[i], "input " + std::to_string(i));
  for (size_t i = 0; i < base.size(); ++i)
    if (h.inferred.params[i].trainable)
      check_tensor(base[i], h.grad_params[i], "param " + h.inferred.params[i].name);
  h.params = params_at_start;
  return result;
}

std::string describe_case(const std::string& op_name, const Attrs& attrs,
                          const std::vector<Shape>& shapes) {
  std::string s = op_name;
  for (const Shape& shape : shapes) s += " in=" + shape_str(shape);
  for (const auto& [name, value] : attrs.values()) s += " " + name + "=" + attr_value_str(value);
  return s;
}

}  // namespace emt::test
