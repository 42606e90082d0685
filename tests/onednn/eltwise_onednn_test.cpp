// The oneDNN activations (relu, relu6, sigmoid: one eltwise implementation) must agree with their
// reference ops, kinks and saturation included: same outputs, and gradients that accumulate
// into the engine's buffers as the reference's do.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/registry.h"
#include "ops/registry_onednn.h"
#include "ops/relu/relu_onednn.h"
#include "ops/relu6/relu6_onednn.h"
#include "ops/sigmoid/sigmoid_onednn.h"
#include "tests/onednn/variant_check.h"

namespace emt::test {
namespace {

const OpVariant* const kVariants[] = {&relu_onednn_variant(), &relu6_onednn_variant(),
                                      &sigmoid_onednn_variant()};

// Any rank: activations follow convolutions ([N,C,H,W]) and dense layers ([N,K]).
const std::vector<Shape> kShapes = {{7},          {1, 17},      {3, 1},        {2, 1, 1, 1},
                                    {1, 3, 5, 9}, {3, 7, 9, 5}, {2, 17, 13, 7}};

// U(-8, 8), past relu6's upper kink, with every fifth element replaced by a value where the
// kernels are easiest to get wrong: the kinks themselves, a negative zero, and inputs that
// saturate the sigmoid or would overflow a naive exp(-x).
void awkward_inputs(std::vector<std::vector<float>>& inputs, std::mt19937& rng) {
  static constexpr float kSpecial[] = {0.0f,   -0.0f, 6.0f,    -6.0f, 20.0f,
                                       -20.0f, 100.f, -100.0f, 1e30f, -1e30f};
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  size_t next = 0;
  for (std::vector<float>& in : inputs)
    for (size_t i = 0; i < in.size(); ++i)
      in[i] = i % 5 == 0 ? kSpecial[next++ % std::size(kSpecial)] : dist(rng);
}

void check_case(const OpVariant& variant, const Shape& shape, uint32_t seed,
                CheckOptions options = {}) {
  options.shape_inputs = awkward_inputs;
  check_variant(variant, complete_attrs(*find_op_schema(variant.op), {}), {shape},
                variant.op + " in=" + shape_str(shape), seed, options);
}

TEST(EltwiseOnednn, MatchesReferenceOnAwkwardShapesAndValues) {
  for (const OpVariant* variant : kVariants) {
    uint32_t seed = 1;
    for (const Shape& shape : kShapes) check_case(*variant, shape, seed++);
  }
}

TEST(EltwiseOnednn, MatchesReferenceOnBlockedActivations) {
  for (const OpVariant* variant : kVariants) {
    uint32_t seed = 1;
    for (const Shape& shape : {Shape{2, 16, 5, 7}, Shape{1, 32, 3, 3}})
      check_case(*variant, shape, seed++, {.blocked = true});
  }
}

TEST(EltwiseOnednn, WritesAGradientKnownToBeZero) {
  for (const OpVariant* variant : kVariants)
    check_case(*variant, {2, 16, 5, 7}, 1, {.passes = {{}}, .zeroed_grad_input = true});
}

TEST(EltwiseOnednn, EvalForwardMatchesToo) {
  for (const OpVariant* variant : kVariants)
    check_case(*variant, {2, 3, 5, 7}, 1,
               {.passes = {{.mode = Mode::kEval, .backward = false}, {.mode = Mode::kEval}}});
}

TEST(EltwiseOnednn, SkipsNullGradient) {
  for (const OpVariant* variant : kVariants)
    check_case(*variant, {2, 3, 5, 7}, 1, {.wanted = {.input = false}});
}

TEST(EltwiseOnednn, NewInputShapeGetsItsOwnPrimitives) {
  for (const OpVariant* variant : kVariants) {
    const std::unique_ptr<Op> op = variant->create({});
    uint32_t seed = 1;
    for (const Shape& shape : {Shape{1, 3, 9, 9}, Shape{3, 17}, Shape{1, 3, 9, 9}})
      check_case(*variant, shape, seed++, {.op = op.get()});
  }
}

TEST(EltwiseOnednn, IsRegisteredAndExplainsRejections) {
  for (const OpVariant* variant : kVariants) {
    EXPECT_EQ(find_onednn_variant(variant->op), variant);
    EXPECT_EQ(variant->backend, "onednn");
    const std::vector<Shape> two = {{2, 3}, {2, 3}};
    EXPECT_NE(variant->supports({}, two).find("takes 1 to 1 inputs, got 2"), std::string::npos)
        << variant->supports({}, two);
  }
}

}  // namespace
}  // namespace emt::test
