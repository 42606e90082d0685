#include <gtest/gtest.h>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

TEST(Relu6, ForwardHandComputed) {
  OpHarness h("relu6", {}, {{1, 7}});
  h.inputs[0] = {-2.0f, -0.0f, 0.5f, 3.0f, 6.0f, 7.5f, 1e4f};
  h.forward();
  EXPECT_EQ(h.outputs[0], (std::vector<float>{0.0f, 0.0f, 0.5f, 3.0f, 6.0f, 6.0f, 6.0f}));
}

TEST(Relu6, BackwardHandComputedIncludingKinks) {
  OpHarness h("relu6", {}, {{1, 7}});
  h.inputs[0] = {-2.0f, 0.0f, 0.5f, 5.5f, 6.0f, 7.5f, 1e4f};
  h.grad_outputs[0] = {1, 2, 3, 4, 5, 6, 7};
  h.forward();
  h.backward();
  EXPECT_EQ(h.grad_inputs[0], (std::vector<float>{0, 0, 3, 4, 0, 0, 0}));
}

TEST(Relu6, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(1);
  // check_gradients draws inputs in [-1, 1], far below the kink at 6; the next test covers it.
  for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{1, 17}, Shape{3, 1, 1, 1}}) {
    OpHarness h("relu6", {}, {shape});
    const GradCheckResult r = check_gradients(h, rng, {.kink_margin = 0.01f});
    EXPECT_TRUE(r.ok) << describe_case("relu6", {}, {shape}) << " max_abs_err=" << r.max_abs_err
                      << " worst " << r.worst;
  }
}

// relu6 is elementwise, so shifting every input at once by +-step gives every element's
// numeric derivative from just two forward passes.
TEST(Relu6, BackwardMatchesFiniteDifferencesAcrossBothKinks) {
  constexpr float kStep = 1e-3f;
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-3.0f, 9.0f);
  std::vector<float> x;
  while (x.size() < 257) {
    const float v = dist(rng);
    if (std::abs(v) > 0.05f && std::abs(v - 6.0f) > 0.05f) x.push_back(v);
  }
  const Shape shape{1, static_cast<int64_t>(x.size())};
  OpHarness h("relu6", {}, {shape});
  auto forward_at = [&](float shift) {
    for (size_t i = 0; i < x.size(); ++i) h.inputs[0][i] = x[i] + shift;
    h.forward();
    return h.outputs[0];
  };
  const std::vector<float> plus = forward_at(kStep);
  const std::vector<float> minus = forward_at(-kStep);
  forward_at(0.0f);
  std::fill(h.grad_outputs[0].begin(), h.grad_outputs[0].end(), 1.0f);
  h.backward();
  int saturated = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float numeric = (plus[i] - minus[i]) / (2 * kStep);
    EXPECT_NEAR(h.grad_inputs[0][i], numeric, 2e-2f) << "x=" << x[i];
    saturated += x[i] > 6.0f;
  }
  EXPECT_GT(saturated, 20);  // the range really exercised the upper kink
}

}  // namespace
}  // namespace emt::test
