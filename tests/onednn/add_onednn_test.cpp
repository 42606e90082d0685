// The oneDNN add must agree with the reference op: the sum, and grad_out added into each wanted
// input gradient (the backward runs the forward's primitive in place).
#include "ops/add/add_onednn.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/registry_onednn.h"
#include "tests/onednn/variant_check.h"

namespace emt::test {
namespace {

void check_case(const Shape& shape, uint32_t seed, CheckOptions options = {}) {
  check_variant(add_onednn_variant(), {}, {shape, shape}, "add in=" + shape_str(shape) + " x2",
                seed, options);
}

TEST(AddOnednn, MatchesReferenceOnAwkwardShapes) {
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{3, 17}, Shape{1, 1, 1, 1}, Shape{2, 3, 5, 9},
                             Shape{3, 7, 13, 1}, Shape{1, 17, 9, 7}, Shape{2, 32, 16, 16}})
    check_case(shape, seed++);
}

TEST(AddOnednn, MatchesReferenceOnBlockedActivations) {
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{2, 16, 5, 7}, Shape{1, 32, 9, 9}})
    check_case(shape, seed++, {.blocked = true});
}

TEST(AddOnednn, SkipsNullGradients) {
  const Shape shape = {3, 7, 5, 9};
  check_case(shape, 1, {.wanted = {.input = false}});
  check_case(shape, 2, {.wanted = {.other_inputs = false}});
  check_case(shape, 3, {.wanted = {.input = false, .other_inputs = false}});
}

TEST(AddOnednn, NewInputShapeGetsItsOwnPrimitives) {
  const std::unique_ptr<Op> op = add_onednn_variant().create({});
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{1, 3, 9, 9}, Shape{3, 17}, Shape{1, 3, 9, 9}})
    check_case(shape, seed++, {.op = op.get()});
}

TEST(AddOnednn, RejectsWhatTheReferenceRejects) {
  const std::vector<Shape> mismatch = {{2, 3}, {3, 2}};
  const std::vector<Shape> one = {{2, 3}};
  EXPECT_NE(add_onednn_variant().supports({}, mismatch).find("same shape"), std::string::npos);
  EXPECT_NE(add_onednn_variant().supports({}, one).find("takes 2 to 2 inputs, got 1"),
            std::string::npos);
}

TEST(AddOnednn, IsRegistered) {
  EXPECT_EQ(find_onednn_variant("add"), &add_onednn_variant());
  EXPECT_EQ(add_onednn_variant().backend, "onednn");
}

}  // namespace
}  // namespace emt::test
