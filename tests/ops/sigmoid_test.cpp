#include <gtest/gtest.h>

#include <cmath>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

TEST(Sigmoid, ForwardHandComputed) {
  OpHarness h("sigmoid", {}, {{1, 5}});
  h.inputs[0] = {0.0f, 1.0f, -1.0f, 2.0f, -3.0f};
  h.forward();
  const std::vector<float> expected = {0.5f, 0.7310585786f, 0.2689414214f, 0.8807970780f,
                                       0.0474258732f};
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(h.outputs[0][i], expected[i], 1e-6f) << "x=" << h.inputs[0][i];
}

TEST(Sigmoid, BackwardHandComputed) {
  OpHarness h("sigmoid", {}, {{1, 3}});
  h.inputs[0] = {0.0f, 1.0f, -3.0f};
  h.grad_outputs[0] = {2.0f, 1.0f, -1.0f};
  h.forward();
  h.backward();
  // sigmoid'(x) = s(1 - s): 0.25, 0.7310586 * 0.2689414, 0.0474259 * 0.9525741.
  EXPECT_NEAR(h.grad_inputs[0][0], 0.5f, 1e-6f);
  EXPECT_NEAR(h.grad_inputs[0][1], 0.1966119332f, 1e-6f);
  EXPECT_NEAR(h.grad_inputs[0][2], -0.0451766597f, 1e-6f);
}

TEST(Sigmoid, ExtremeInputsStayFiniteAndExact) {
  OpHarness h("sigmoid", {}, {{1, 4}});
  h.inputs[0] = {1e4f, -1e4f, 80.0f, -80.0f};
  h.grad_outputs[0] = {1.0f, 1.0f, 1.0f, 1.0f};
  h.forward();
  h.backward();
  // exp(-80) = 1.8e-35 is still a normal float, and 1 + exp(-80) rounds to 1.
  const float tiny = static_cast<float>(std::exp(-80.0));
  EXPECT_EQ(h.outputs[0][0], 1.0f);
  EXPECT_EQ(h.outputs[0][1], 0.0f);
  EXPECT_EQ(h.outputs[0][2], 1.0f);
  EXPECT_FLOAT_EQ(h.outputs[0][3], tiny);
  EXPECT_EQ(h.grad_inputs[0][0], 0.0f);
  EXPECT_EQ(h.grad_inputs[0][1], 0.0f);
  EXPECT_EQ(h.grad_inputs[0][2], 0.0f);
  EXPECT_FLOAT_EQ(h.grad_inputs[0][3], tiny);
  for (float v : h.outputs[0]) EXPECT_TRUE(std::isfinite(v));
  for (float v : h.grad_inputs[0]) EXPECT_TRUE(std::isfinite(v));
}

TEST(Sigmoid, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(3);
  for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{1, 17}, Shape{1, 1}}) {
    OpHarness h("sigmoid", {}, {shape});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << describe_case("sigmoid", {}, {shape}) << " max_abs_err=" << r.max_abs_err
                      << " worst " << r.worst;
  }
}

}  // namespace
}  // namespace emt::test
