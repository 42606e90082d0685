#include <gtest/gtest.h>

#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

// Param indices in the order batch_norm publishes them.
constexpr size_t kGamma = 0, kBeta = 1, kRunningMean = 2, kRunningVar = 3;

Attrs bn_attrs(double eps, double momentum = 0.1) {
  Attrs attrs;
  attrs.set("eps", eps);
  attrs.set("momentum", momentum);
  return attrs;
}

void set_fresh_params(OpHarness& h, std::vector<float> gamma, std::vector<float> beta) {
  h.params[kGamma] = std::move(gamma);
  h.params[kBeta] = std::move(beta);
  std::fill(h.params[kRunningMean].begin(), h.params[kRunningMean].end(), 0.0f);
  std::fill(h.params[kRunningVar].begin(), h.params[kRunningVar].end(), 1.0f);
}

TEST(BatchNorm, PublishesParamsInOrder) {
  OpHarness h("batch_norm", {}, {{2, 3, 4, 5}});
  EXPECT_EQ(h.inferred.outputs, (std::vector<Shape>{{2, 3, 4, 5}}));
  const std::vector<ParamSpec>& p = h.inferred.params;
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[kGamma].name, "gamma");
  EXPECT_EQ(p[kBeta].name, "beta");
  EXPECT_EQ(p[kRunningMean].name, "running_mean");
  EXPECT_EQ(p[kRunningVar].name, "running_var");
  for (const ParamSpec& spec : p) EXPECT_EQ(spec.shape, (Shape{3}));
  EXPECT_EQ(p[kGamma].init, ParamInit::kOnes);
  EXPECT_EQ(p[kBeta].init, ParamInit::kZeros);
  EXPECT_EQ(p[kRunningMean].init, ParamInit::kZeros);
  EXPECT_EQ(p[kRunningVar].init, ParamInit::kOnes);
  EXPECT_TRUE(p[kGamma].trainable);
  EXPECT_TRUE(p[kBeta].trainable);
  EXPECT_FALSE(p[kRunningMean].trainable);
  EXPECT_FALSE(p[kRunningVar].trainable);
}

// Channel 0 holds {1, 3, 1, 3}: mean 2, biased var 1, xhat {-1, 1, -1, 1}.
// Channel 1 holds {7, 9, 9, 15}: mean 10, biased var 9, xhat {-1, -1/3, -1/3, 5/3}.
// gamma {2, 3}, beta {1, -1}; eps 0 keeps the numbers exact.
// Running update with momentum 0.1 from (0, 1): mean 0.1 * batch mean; the unbiased variances are
// 4/3 and 12, so var = 0.9 + 0.1 * {4/3, 12}.
void expect_hand_computed_train(const Shape& shape, const std::vector<float>& x,
                                const std::vector<float>& expected) {
  OpHarness h("batch_norm", bn_attrs(0.0), {shape});
  set_fresh_params(h, {2, 3}, {1, -1});
  h.inputs[0] = x;
  h.forward(Mode::kTrain);
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(h.outputs[0][i], expected[i], 1e-5f) << shape_str(shape) << " element " << i;
  EXPECT_NEAR(h.params[kRunningMean][0], 0.2f, 1e-6f);
  EXPECT_NEAR(h.params[kRunningMean][1], 1.0f, 1e-6f);
  EXPECT_NEAR(h.params[kRunningVar][0], 0.9f + 0.1f * 4.0f / 3.0f, 1e-6f);
  EXPECT_NEAR(h.params[kRunningVar][1], 0.9f + 0.1f * 12.0f, 1e-6f);
  EXPECT_EQ(h.params[kGamma], (std::vector<float>{2, 3}));  // only running stats move
}

TEST(BatchNorm, TrainForwardAndRunningStatsHandComputedNCHW) {
  // [N=2, C=2, H=1, W=2]: each batch item stores channel 0's pair, then channel 1's.
  expect_hand_computed_train({2, 2, 1, 2}, {1, 3, 7, 9, 1, 3, 9, 15},
                             {-1, 3, -4, -2, -1, 3, -2, 4});
}

TEST(BatchNorm, TrainForwardAndRunningStatsHandComputedNC) {
  // The same statistics in a [N=4, C=2] layout, channels interleaved.
  expect_hand_computed_train({4, 2}, {1, 7, 3, 9, 1, 9, 3, 15}, {-1, -4, 3, -2, -1, -2, 3, 4});
}

TEST(BatchNorm, MomentumWeightsTheBatchStatistics) {
  OpHarness h("batch_norm", bn_attrs(0.0, 0.25), {{4, 1}});
  set_fresh_params(h, {1}, {0});
  h.params[kRunningMean] = {8.0f};
  h.params[kRunningVar] = {2.0f};
  h.inputs[0] = {0, 0, 4, 4};  // mean 2, unbiased var 16/3
  h.forward(Mode::kTrain);
  EXPECT_NEAR(h.params[kRunningMean][0], 0.75f * 8.0f + 0.25f * 2.0f, 1e-6f);
  EXPECT_NEAR(h.params[kRunningVar][0], 0.75f * 2.0f + 0.25f * 16.0f / 3.0f, 1e-6f);
}

TEST(BatchNorm, EvalUsesRunningStatsAndLeavesThemAlone) {
  OpHarness h("batch_norm", bn_attrs(0.0), {{2, 2, 1, 2}});
  h.params[kGamma] = {2, 1};
  h.params[kBeta] = {0.5f, 0};
  h.params[kRunningMean] = {1, -2};
  h.params[kRunningVar] = {4, 0.25f};
  h.inputs[0] = {1, 3, -2, 0, 5, -1, -1, -3};
  h.forward(Mode::kEval);
  // Channel 0: 2 * (x - 1) / 2 + 0.5. Channel 1: (x + 2) / 0.5.
  EXPECT_EQ(h.outputs[0], (std::vector<float>{0.5f, 2.5f, 0, 4, 4.5f, -1.5f, 2, -2}));
  EXPECT_EQ(h.params[kRunningMean], (std::vector<float>{1, -2}));
  EXPECT_EQ(h.params[kRunningVar], (std::vector<float>{4, 0.25f}));
}

TEST(BatchNorm, EpsIsAddedToTheVariance) {
  OpHarness h("batch_norm", bn_attrs(0.5), {{2, 1}});
  set_fresh_params(h, {1}, {0});
  h.inputs[0] = {-1, 1};  // biased var 1, so 1/std = 1/sqrt(1.5)
  h.forward(Mode::kTrain);
  EXPECT_NEAR(h.outputs[0][0], -0.8164966f, 1e-6f);
  EXPECT_NEAR(h.outputs[0][1], 0.8164966f, 1e-6f);
}

TEST(BatchNorm, TrainBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(7);
  for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{3, 1, 3, 3}, Shape{2, 7, 3, 1},
                             Shape{1, 17, 3, 5}, Shape{5, 3}, Shape{9, 17}}) {
    OpHarness h("batch_norm", {}, {shape});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << describe_case("batch_norm", {}, {shape})
                      << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
  }
}

TEST(BatchNorm, BackwardHandComputedParamGradients) {
  OpHarness h("batch_norm", bn_attrs(0.0), {{2, 2, 1, 2}});
  set_fresh_params(h, {2, 3}, {1, -1});
  h.inputs[0] = {1, 3, 7, 9, 1, 3, 9, 15};
  h.grad_outputs[0] = {1, 0, 3, 0, 0, 2, 0, 3};
  h.forward(Mode::kTrain);
  h.backward();
  // dbeta = sum(dy); dgamma = sum(dy * xhat): channel 0 -1 + 2, channel 1 -3 + 5.
  EXPECT_NEAR(h.grad_params[kBeta][0], 3.0f, 1e-6f);
  EXPECT_NEAR(h.grad_params[kBeta][1], 6.0f, 1e-6f);
  EXPECT_NEAR(h.grad_params[kGamma][0], 1.0f, 1e-6f);
  EXPECT_NEAR(h.grad_params[kGamma][1], 2.0f, 1e-6f);
  // A constant dy is absorbed entirely by the mean: dx must vanish.
  std::fill(h.grad_outputs[0].begin(), h.grad_outputs[0].end(), 1.0f);
  h.backward();
  for (float g : h.grad_inputs[0]) EXPECT_NEAR(g, 0.0f, 1e-6f);
}

TEST(BatchNorm, RejectsBadShapesAttrsAndSingleValueChannels) {
  EXPECT_THROW(OpHarness("batch_norm", {}, {{2, 3, 4}}), OpError);
  EXPECT_THROW(OpHarness("batch_norm", {}, {{3}}), OpError);
  EXPECT_THROW(OpHarness("batch_norm", bn_attrs(1e-5, 1.5), {{2, 3}}), OpError);
  EXPECT_THROW(OpHarness("batch_norm", bn_attrs(-1.0), {{2, 3}}), OpError);
  OpHarness single("batch_norm", {}, {{1, 3, 1, 1}});
  EXPECT_THROW(single.forward(Mode::kTrain), OpError);
  EXPECT_NO_THROW(single.forward(Mode::kEval));
  OpHarness no_forward("batch_norm", {}, {{2, 3}});
  EXPECT_THROW(no_forward.backward(), OpError);
}

}  // namespace
}  // namespace emt::test
