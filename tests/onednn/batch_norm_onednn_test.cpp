// The oneDNN batch_norm must agree with the reference op in both modes: outputs, the running
// statistics a train forward moves (PyTorch's update, unbiased variance), and gradients through
// the batch statistics that accumulate into the engine's buffers as the reference's do.
#include "ops/batch_norm/batch_norm_onednn.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/batch_norm/batch_norm.h"
#include "ops/registry.h"
#include "ops/registry_onednn.h"
#include "tests/onednn/variant_check.h"

namespace emt::test {
namespace {

Attrs attrs_of(double eps = 1e-5, double momentum = 0.1) {
  Attrs a;
  a.set("eps", eps);
  a.set("momentum", momentum);
  return complete_attrs(batch_norm_schema(), a);
}

std::string name_of(const Shape& shape, const Attrs& attrs) {
  return describe_case("batch_norm", attrs, {shape});
}

// Train (moves the running statistics, then backward), eval (normalises with the moved ones),
// train again: the second train's backward must still add, not overwrite, and the running
// statistics move twice.
const std::vector<Pass> kTrainEvalTrain = {
    {.mode = Mode::kTrain}, {.mode = Mode::kEval, .backward = false}, {.mode = Mode::kTrain}};

void check_case(const Shape& shape, uint32_t seed, CheckOptions options = {},
                const Attrs& attrs = attrs_of()) {
  if (options.passes.size() == 2 && options.passes[0].mode == Mode::kTrain &&
      options.passes[1].mode == Mode::kTrain)
    options.passes = kTrainEvalTrain;
  check_variant(batch_norm_onednn_variant(), attrs, {shape}, name_of(shape, attrs), seed, options);
}

// Channels 1, 3, 7, 17 in both layouts, batches 1 to 3 where train mode allows them (it needs
// more than one value per channel), odd planes.
std::vector<Shape> sweep() {
  std::mt19937 rng(2024);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<Shape> shapes;
  for (int64_t c : {1, 3, 7, 17}) {
    shapes.push_back({pick({2, 3}), c});
    shapes.push_back({pick({1, 2, 3}), c, pick({1, 5, 9}), pick({3, 7, 13})});
    shapes.push_back({pick({2, 3}), c, 1, 1});
  }
  return shapes;
}

TEST(BatchNormOnednn, MatchesReferenceInBothModes) {
  uint32_t seed = 1;
  for (const Shape& shape : sweep()) check_case(shape, seed++);
}

TEST(BatchNormOnednn, MatchesReferenceOnBlockedActivations) {
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{2, 16, 5, 7}, Shape{3, 32, 9, 1}, Shape{1, 48, 4, 4}})
    check_case(shape, seed++, {.blocked = true});
}

TEST(BatchNormOnednn, WritesAGradientKnownToBeZero) {
  uint32_t seed = 1;
  for (bool blocked : {false, true})
    check_case({2, 16, 5, 7}, seed++,
               {.passes = {{}}, .blocked = blocked, .zeroed_grad_input = true});
}

TEST(BatchNormOnednn, EvalBeforeAnyTrainUsesTheGivenRunningStatistics) {
  uint32_t seed = 1;
  for (const Shape& shape : sweep())
    check_case(shape, seed++,
               {.passes = {{.mode = Mode::kEval, .backward = false}, {.mode = Mode::kTrain}}});
}

TEST(BatchNormOnednn, EvalRunsOnASingleValuePerChannel) {
  check_case({1, 7}, 1, {.passes = {{.mode = Mode::kEval, .backward = false}}});
  check_case({1, 3, 1, 1}, 2, {.passes = {{.mode = Mode::kEval, .backward = false}}});
}

TEST(BatchNormOnednn, OtherEpsAndMomentum) {
  check_case({3, 7, 5, 5}, 1, {}, attrs_of(1e-3, 0.25));
  check_case({4, 3}, 2, {}, attrs_of(0.0, 1.0));
  check_case({2, 17, 3, 3}, 3, {}, attrs_of(1e-5, 0.0));
}

// The reference computes the variance in two passes because sum(x^2) - mean^2 cancels when
// |mean| >> std: the variant must not be worse there.
TEST(BatchNormOnednn, MatchesReferenceWhenTheMeanDwarfsTheSpread) {
  const auto offset = [](std::vector<std::vector<float>>& inputs, std::mt19937&) {
    for (float& v : inputs[0]) v += 100.0f;
  };
  check_case({3, 7, 9, 5}, 1, {.shape_inputs = offset});
  check_case({16, 17}, 2, {.shape_inputs = offset});
}

TEST(BatchNormOnednn, SkipsNullGradients) {
  const Shape shape = {3, 7, 5, 9};
  check_case(shape, 1, {.wanted = {.input = false}});
  check_case(shape, 2, {.wanted = {.weight = false}});
  check_case(shape, 3, {.wanted = {.bias = false}});
  check_case(shape, 4, {.wanted = {.weight = false, .bias = false}});
  check_case(shape, 5, {.wanted = {.input = false, .weight = false, .bias = false}});
}

TEST(BatchNormOnednn, NewInputShapeGetsItsOwnPrimitives) {
  // Same channel count throughout, so that only a cache keyed by the whole shape separates them.
  const std::unique_ptr<Op> op = batch_norm_onednn_variant().create(attrs_of());
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{2, 7, 5, 5}, Shape{3, 7}, Shape{1, 7, 9, 3}, Shape{2, 7, 5, 5}})
    check_case(shape, seed++, {.op = op.get()});
}

TEST(BatchNormOnednn, RejectsWhatTheReferenceRejects) {
  const Attrs attrs = attrs_of();
  const OpVariant& variant = batch_norm_onednn_variant();
  const std::vector<Shape> rank3 = {{2, 3, 5}};
  EXPECT_NE(variant.supports(attrs, rank3).find("[N,C,H,W] or [N,C]"), std::string::npos);

  // Train mode needs two values per channel; backward needs the statistics of a train forward.
  for (const std::string& backend : {std::string("reference"), std::string("onednn")}) {
    OpHarness h("batch_norm", attrs, {{1, 3}});
    if (backend == "onednn") h.op = variant.create(attrs);
    h.randomize(*std::make_unique<std::mt19937>(1));
    EXPECT_THROW(h.forward(Mode::kTrain), OpError) << backend;
    EXPECT_THROW(h.backward(), OpError) << backend;
    h.forward(Mode::kEval);
    EXPECT_THROW(h.backward(), OpError) << backend;
  }
}

TEST(BatchNormOnednn, IsRegistered) {
  EXPECT_EQ(find_onednn_variant("batch_norm"), &batch_norm_onednn_variant());
  EXPECT_EQ(batch_norm_onednn_variant().backend, "onednn");
}

}  // namespace
}  // namespace emt::test
