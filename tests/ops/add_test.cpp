#include <gtest/gtest.h>

#include "ops/registry.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

TEST(Add, ForwardHandComputed) {
  OpHarness h("add", {}, {{1, 3}, {1, 3}});
  h.inputs[0] = {1.0f, 2.0f, 3.0f};
  h.inputs[1] = {10.0f, -2.0f, 0.5f};
  h.forward();
  EXPECT_EQ(h.inferred.outputs, (std::vector<Shape>{{1, 3}}));
  EXPECT_EQ(h.outputs[0], (std::vector<float>{11.0f, 0.0f, 3.5f}));
}

TEST(Add, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(4);
  for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{1, 17}, Shape{3, 1, 1, 1}}) {
    OpHarness h("add", {}, {shape, shape});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << describe_case("add", {}, {shape, shape})
                      << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
  }
}

// The engine zeroes gradients once per step and relies on += to sum the contributions of a value
// used twice, so call the kernel directly with gradients that already hold something.
TEST(Add, BackwardAccumulatesAndSkipsNullGradients) {
  const Shape shape{1, 2};
  std::vector<float> a = {1, 2}, b = {3, 4}, out = {4, 6}, grad_out = {0.5f, -1.0f};
  std::vector<float> grad_a = {10, 20};
  const std::vector<Tensor> inputs = {{a.data(), shape}, {b.data(), shape}};
  const std::vector<Tensor> outputs = {{out.data(), shape}};
  const std::vector<Tensor> grad_outputs = {{grad_out.data(), shape}};
  const std::vector<Tensor> grad_inputs = {{grad_a.data(), shape}, {nullptr, shape}};
  create_op("add")->backward({inputs, {}, outputs, grad_outputs, grad_inputs, {}});
  EXPECT_EQ(grad_a, (std::vector<float>{10.5f, 19.0f}));
}

TEST(Add, RejectsMismatchedShapesNamingBoth) {
  try {
    OpHarness h("add", {}, {{2, 3, 4, 4}, {2, 3, 4, 5}});
    FAIL() << "no OpError";
  } catch (const OpError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("[2,3,4,4]"), std::string::npos) << message;
    EXPECT_NE(message.find("[2,3,4,5]"), std::string::npos) << message;
  }
  EXPECT_THROW(OpHarness("add", {}, {{2, 3}, {3, 2}}), OpError);
  EXPECT_THROW(OpHarness("add", {}, {{2, 3}}), OpError);
  EXPECT_THROW(OpHarness("add", {}, {{2, 3}, {2, 3}, {2, 3}}), OpError);
}

}  // namespace
}  // namespace emt::test
