#include <gtest/gtest.h>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

Attrs dense_attrs(int64_t out, bool bias = true) {
  Attrs attrs;
  attrs.set("out", out);
  attrs.set("bias", bias);
  return attrs;
}

TEST(Dense, InfersShapesParamsAndMacs) {
  OpHarness h("dense", dense_attrs(5), {{4, 3}});
  EXPECT_EQ(h.inferred.outputs, (std::vector<Shape>{{4, 5}}));
  EXPECT_EQ(h.inferred.macs_per_sample, 15);
  ASSERT_EQ(h.inferred.params.size(), 2u);
  const ParamSpec& w = h.inferred.params[0];
  EXPECT_EQ(w.name, "weight");
  EXPECT_EQ(w.shape, (Shape{5, 3}));
  EXPECT_EQ(w.init, ParamInit::kHeNormal);
  EXPECT_EQ(w.fan_in, 3);
  EXPECT_TRUE(w.trainable);
  const ParamSpec& b = h.inferred.params[1];
  EXPECT_EQ(b.name, "bias");
  EXPECT_EQ(b.shape, (Shape{5}));
  EXPECT_EQ(b.init, ParamInit::kZeros);

  OpHarness no_bias("dense", dense_attrs(5, false), {{4, 3}});
  ASSERT_EQ(no_bias.inferred.params.size(), 1u);
  EXPECT_EQ(no_bias.inferred.params[0].name, "weight");
}

TEST(Dense, ForwardHandComputed) {
  OpHarness h("dense", dense_attrs(2), {{2, 3}});
  h.inputs[0] = {1, 2, 3, -1, 0, 1};
  h.params[0] = {1, 0, -1, 0.5f, 0.5f, 0.5f};  // weight [out=2, K=3]
  h.params[1] = {10, -1};
  h.forward();
  // Row 0: 1 - 3 + 10 = 8, 0.5 * 6 - 1 = 2. Row 1: -1 - 1 + 10 = 8, 0 - 1 = -1.
  EXPECT_EQ(h.outputs[0], (std::vector<float>{8, 2, 8, -1}));

  OpHarness no_bias("dense", dense_attrs(2, false), {{2, 3}});
  no_bias.inputs[0] = h.inputs[0];
  no_bias.params[0] = h.params[0];
  no_bias.forward();
  EXPECT_EQ(no_bias.outputs[0], (std::vector<float>{-2, 3, -2, 0}));
}

TEST(Dense, BackwardHandComputed) {
  OpHarness h("dense", dense_attrs(2), {{2, 3}});
  h.inputs[0] = {1, 2, 3, -1, 0, 1};
  h.params[0] = {1, 0, -1, 0.5f, 0.5f, 0.5f};
  h.grad_outputs[0] = {1, 2, -1, 0};
  h.forward();
  h.backward();
  // dx = dy * W; dW = dy^T * x; db = column sums of dy.
  EXPECT_EQ(h.grad_inputs[0], (std::vector<float>{2, 1, 0, -1, 0, 1}));
  EXPECT_EQ(h.grad_params[0], (std::vector<float>{2, 2, 2, 2, 4, 6}));
  EXPECT_EQ(h.grad_params[1], (std::vector<float>{0, 2}));
}

TEST(Dense, BackwardSkipsNullGradients) {
  OpHarness h("dense", dense_attrs(2), {{2, 3}});
  h.inputs[0] = {1, 2, 3, -1, 0, 1};
  h.params[0] = {1, 0, -1, 0.5f, 0.5f, 0.5f};
  h.grad_outputs[0] = {1, 2, -1, 0};
  h.forward();
  // The harness hands an empty buffer to the kernel as a tensor with null data.
  h.grad_inputs[0].clear();
  h.grad_params[0].clear();
  h.backward();
  EXPECT_EQ(h.grad_params[1], (std::vector<float>{0, 2}));
}

TEST(Dense, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(6);
  struct Case {
    int64_t batch, k, out;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{3, 7, 5}, Case{2, 17, 3}, Case{5, 3, 17}}) {
    for (bool bias : {true, false}) {
      const Attrs attrs = dense_attrs(c.out, bias);
      const std::vector<Shape> shapes = {{c.batch, c.k}};
      OpHarness h("dense", attrs, shapes);
      const GradCheckResult r = check_gradients(h, rng);
      EXPECT_TRUE(r.ok) << describe_case("dense", attrs, shapes) << " max_abs_err=" << r.max_abs_err
                        << " worst " << r.worst;
    }
  }
}

TEST(Dense, RejectsBadInputsAndAttrs) {
  EXPECT_THROW(OpHarness("dense", dense_attrs(4), {{2, 3, 1, 1}}), OpError);
  EXPECT_THROW(OpHarness("dense", dense_attrs(4), {{2, 0}}), OpError);
  EXPECT_THROW(OpHarness("dense", dense_attrs(0), {{2, 3}}), OpError);
  EXPECT_THROW(OpHarness("dense", {}, {{2, 3}}), OpError);  // out is required
}

}  // namespace
}  // namespace emt::test
