// The oneDNN global_avg_pool must agree with the reference op: the plane means, and each plane's
// grad_out / (H * W) added into every element of the input gradient.
#include "ops/global_avg_pool/global_avg_pool_onednn.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/registry_onednn.h"
#include "tests/onednn/variant_check.h"

namespace emt::test {
namespace {

void check_case(const Shape& shape, uint32_t seed, CheckOptions options = {}) {
  check_variant(global_avg_pool_onednn_variant(), {}, {shape},
                "global_avg_pool in=" + shape_str(shape), seed, options);
}

TEST(GlobalAvgPoolOnednn, MatchesReferenceOnAwkwardShapes) {
  std::mt19937 rng(2024);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  uint32_t seed = 1;
  for (int64_t c : {1, 3, 7, 17})
    for (int repeat = 0; repeat < 3; ++repeat)
      check_case({pick({1, 2, 3}), c, pick({1, 3, 5, 9, 13}), pick({1, 7, 9, 17})}, seed++);
  // EMT-Net's head: the encoder's last feature map.
  check_case({2, 1024, 4, 4}, seed++);
}

// The plan's encoder output arrives blocked (nChw16c); the [N, C] result is plain.
TEST(GlobalAvgPoolOnednn, MatchesReferenceOnBlockedActivations) {
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{2, 16, 5, 7}, Shape{3, 64, 4, 4}, Shape{1, 32, 1, 1}})
    check_case(shape, seed++, {.blocked = true});
}

TEST(GlobalAvgPoolOnednn, SkipsNullGradient) {
  check_case({3, 7, 5, 9}, 1, {.wanted = {.input = false}});
}

TEST(GlobalAvgPoolOnednn, NewInputShapeGetsItsOwnPrimitives) {
  const std::unique_ptr<Op> op = global_avg_pool_onednn_variant().create({});
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{1, 3, 9, 9}, Shape{3, 3, 5, 7}, Shape{1, 3, 9, 9}})
    check_case(shape, seed++, {.op = op.get()});
}

TEST(GlobalAvgPoolOnednn, RejectsWhatTheReferenceRejects) {
  const std::vector<Shape> rank2 = {{2, 3}};
  EXPECT_NE(global_avg_pool_onednn_variant().supports({}, rank2).find("[N,C,H,W]"),
            std::string::npos);
}

TEST(GlobalAvgPoolOnednn, IsRegistered) {
  EXPECT_EQ(find_onednn_variant("global_avg_pool"), &global_avg_pool_onednn_variant());
  EXPECT_EQ(global_avg_pool_onednn_variant().backend, "onednn");
}

}  // namespace
}  // namespace emt::test
