#include <gtest/gtest.h>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

TEST(Relu, ForwardHandComputed) {
  OpHarness h("relu", {}, {{1, 4}});
  h.inputs[0] = {-2.0f, -0.0f, 0.5f, 3.0f};
  h.forward();
  EXPECT_EQ(h.outputs[0], (std::vector<float>{0.0f, 0.0f, 0.5f, 3.0f}));
}

TEST(Relu, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(1);
  for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{1, 17}}) {
    OpHarness h("relu", {}, {shape});
    const GradCheckResult r = check_gradients(h, rng, {.kink_margin = 0.01f});
    EXPECT_TRUE(r.ok) << describe_case("relu", {}, {shape}) << " max_abs_err=" << r.max_abs_err
                      << " worst " << r.worst;
  }
}

}  // namespace
}  // namespace emt::test
