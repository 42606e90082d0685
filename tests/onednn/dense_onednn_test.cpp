// The oneDNN dense (inner product) must agree with the reference op: same inference, same
// outputs, and gradients that accumulate into the engine's buffers as the reference's do.
#include "ops/dense/dense_onednn.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/dense/dense.h"
#include "ops/registry.h"
#include "ops/registry_onednn.h"
#include "tests/onednn/variant_check.h"

namespace emt::test {
namespace {

struct Case {
  int64_t n = 1, k = 1, out = 1;
  bool bias = true;
};

Attrs attrs_of(const Case& c) {
  Attrs a;
  a.set("out", c.out);
  a.set("bias", c.bias);
  return complete_attrs(dense_schema(), a);
}

void check_case(const Case& c, uint32_t seed, CheckOptions options = {}) {
  const std::string repro = "dense n" + std::to_string(c.n) + "k" + std::to_string(c.k) + " o" +
                            std::to_string(c.out) + " bias=" + std::to_string(c.bias);
  check_variant(dense_onednn_variant(), attrs_of(c), {{c.n, c.k}}, repro, seed, options);
}

TEST(DenseOnednn, MatchesReferenceOnAwkwardShapes) {
  std::mt19937 rng(2024);
  uint32_t seed = 1;
  for (int64_t k : {1, 3, 7, 17})
    for (int64_t out : {1, 3, 7, 17})
      check_case(
          {.n = 1 + static_cast<int64_t>(rng() % 3), .k = k, .out = out, .bias = rng() % 2 == 0},
          seed++);
  // EMT-Net's classifier head on the pooled encoder features.
  check_case({.n = 16, .k = 1024, .out = 2}, seed++);
}

TEST(DenseOnednn, SkipsNullGradients) {
  const Case c{.n = 3, .k = 17, .out = 7};
  check_skipped_gradients(
      [&](uint32_t seed, Wanted wanted) { check_case(c, seed, {.wanted = wanted}); });
  check_case({.n = 3, .k = 17, .out = 7, .bias = false}, 6, {.wanted = {.weight = false}});
}

TEST(DenseOnednn, NewInputShapeGetsItsOwnPrimitives) {
  const Attrs attrs = attrs_of({.out = 7});
  const std::unique_ptr<Op> op = dense_onednn_variant().create(attrs);
  uint32_t seed = 1;
  for (const Shape& shape : {Shape{1, 17}, Shape{3, 17}, Shape{2, 5}, Shape{1, 17}})
    check_variant(dense_onednn_variant(), attrs, {shape}, "dense in=" + shape_str(shape) + " o7",
                  seed++, {.op = op.get()});
}

TEST(DenseOnednn, RejectsWhatTheReferenceRejects) {
  const Attrs attrs = attrs_of({.out = 3});
  const std::vector<Shape> rank4 = {{2, 3, 4, 4}};
  EXPECT_NE(dense_onednn_variant().supports(attrs, rank4).find("[N,K]"), std::string::npos);
  Attrs no_out;
  no_out.set("out", int64_t{0});
  const std::vector<Shape> fits = {{2, 3}};
  EXPECT_NE(
      dense_onednn_variant().supports(complete_attrs(dense_schema(), no_out), fits).find("out > 0"),
      std::string::npos);
}

TEST(DenseOnednn, IsRegistered) {
  EXPECT_EQ(find_onednn_variant("dense"), &dense_onednn_variant());
  EXPECT_EQ(dense_onednn_variant().backend, "onednn");
}

}  // namespace
}  // namespace emt::test
