#include <gtest/gtest.h>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

TEST(GlobalAvgPool, ForwardHandComputed) {
  OpHarness h("global_avg_pool", {}, {{2, 2, 2, 2}});
  h.inputs[0] = {1, 2, 3, 4, -1, 0, 0, 5,    // batch 0: channel means 2.5 and 1
                 8, 8, 8, 8, 0,  0, 0, -2};  // batch 1: 8 and -0.5
  h.forward();
  EXPECT_EQ(h.inferred.outputs, (std::vector<Shape>{{2, 2}}));
  EXPECT_EQ(h.inferred.macs_per_sample, 2 * 2 * 2);
  EXPECT_EQ(h.outputs[0], (std::vector<float>{2.5f, 1.0f, 8.0f, -0.5f}));
}

TEST(GlobalAvgPool, BackwardHandComputed) {
  OpHarness h("global_avg_pool", {}, {{1, 2, 2, 2}});
  h.grad_outputs[0] = {4.0f, -8.0f};
  h.forward();
  h.backward();
  EXPECT_EQ(h.grad_inputs[0], (std::vector<float>{1, 1, 1, 1, -2, -2, -2, -2}));
}

TEST(GlobalAvgPool, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(5);
  for (const Shape& shape :
       {Shape{2, 3, 5, 7}, Shape{1, 1, 1, 1}, Shape{3, 7, 3, 1}, Shape{1, 17, 4, 4}}) {
    OpHarness h("global_avg_pool", {}, {shape});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << describe_case("global_avg_pool", {}, {shape})
                      << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
  }
}

TEST(GlobalAvgPool, RejectsNonImageInputs) {
  EXPECT_THROW(OpHarness("global_avg_pool", {}, {{2, 3}}), OpError);
  EXPECT_THROW(OpHarness("global_avg_pool", {}, {{2, 3, 4}}), OpError);
  EXPECT_THROW(OpHarness("global_avg_pool", {}, {{2, 3, 0, 4}}), OpError);
}

}  // namespace
}  // namespace emt::test
