// The oneDNN conv_transpose2d (oneDNN deconvolution) must agree with the reference op: same
// inference, same outputs, and gradients that accumulate into the engine's buffers exactly as
// the reference's do. Cin != out in most cases, so a transposed weight layout cannot pass.
#include "ops/conv_transpose2d/conv_transpose2d_onednn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ops/conv_transpose2d/conv_transpose2d.h"
#include "ops/registry.h"
#include "tests/onednn/variant_check.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

struct Case {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t out = 1, kernel = 1, stride = 1, pad = -1, output_pad = 0;
  bool bias = true;
  std::string activation = "none";
};

Attrs attrs_of(const Case& c) {
  Attrs a;
  a.set("out", c.out);
  a.set("kernel", c.kernel);
  a.set("stride", c.stride);
  a.set("pad", c.pad);
  a.set("output_pad", c.output_pad);
  a.set("bias", c.bias);
  a.set("activation", c.activation);
  return complete_attrs(conv_transpose2d_schema(), a);
}

// "conv_transpose2d n1c17h9w9 o3 k3 s2 p-1 op1 bias=1": every field needed to rerun the case.
std::string name_of(const Case& c) {
  return "conv_transpose2d n" + std::to_string(c.n) + "c" + std::to_string(c.c) + "h" +
         std::to_string(c.h) + "w" + std::to_string(c.w) + " o" + std::to_string(c.out) + " k" +
         std::to_string(c.kernel) + " s" + std::to_string(c.stride) + " p" + std::to_string(c.pad) +
         " op" + std::to_string(c.output_pad) + " bias=" + std::to_string(c.bias) +
         (c.activation == "none" ? "" : " " + c.activation);
}

void check_case(const Case& c, uint32_t seed, Wanted wanted = {}) {
  const Attrs attrs = attrs_of(c);
  const std::vector<Shape> shapes = {{c.n, c.c, c.h, c.w}};
  check_variant(conv_transpose2d_onednn_variant(), attrs, shapes, name_of(c), seed, wanted);
}

// Every combination of the awkward sizes, with the free choices (output channels, batch,
// spatial size, bias, padding) drawn from a fixed seed so that each failure line reruns.
std::vector<Case> sweep() {
  std::mt19937 rng(2024);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<Case> cases;
  for (int64_t ch : {1, 3, 7, 17})
    for (int64_t k : {1, 3})
      for (int64_t s : {1, 2})
        for (int64_t output_pad = 0; output_pad < s; ++output_pad)
          for (int repeat = 0; repeat < 2; ++repeat) {
            Case c;
            c.n = pick({1, 3});
            c.c = ch;
            c.h = pick({1, 5, 9, 13});
            c.w = pick({5, 7, 9, 17});
            c.out = pick({1, 3, 7, 17});
            c.kernel = k;
            c.stride = s;
            c.pad = k == 1 ? pick({-1, 0}) : pick({-1, -1, 0, 2});
            if (c.pad == 2 && c.h == 1) c.h = 5;  // else the output is empty
            c.output_pad = output_pad;
            c.bias = rng() % 2 == 0;
            cases.push_back(c);
          }
  return cases;
}

// EMT-Net's decoder upsampling: k3 s2 p1 op1 doubles the size.
const Case kDecoder{.n = 2,
                    .c = 64,
                    .h = 8,
                    .w = 8,
                    .out = 32,
                    .kernel = 3,
                    .stride = 2,
                    .pad = 1,
                    .output_pad = 1};

TEST(ConvTranspose2dOnednn, MatchesReferenceOnAwkwardShapes) {
  uint32_t seed = 1;
  for (const Case& c : sweep()) check_case(c, seed++);
}

TEST(ConvTranspose2dOnednn, MatchesReferenceOnDecoderShapes) {
  // EMT-Net's decoder upsampling, channel counts that fill oneDNN's vector blocks, and even
  // sizes.
  check_case(kDecoder, 1);
  check_case({.n = 3, .c = 16, .h = 6, .w = 10, .out = 48, .kernel = 3, .stride = 2}, 2);
  check_case(
      {.n = 1, .c = 32, .h = 4, .w = 4, .out = 16, .kernel = 1, .stride = 2, .output_pad = 1}, 3);
}

// With a bias the activation follows the separate bias add (a post-op of the binary
// primitive), without one it is a post-op of the deconvolution: both are swept. Forward only,
// so eval passes; inputs scaled so that relu6 clips.
// As a compiled plan runs them: whole 16-channel blocks blocked (nChw16c), the rest plain; the
// bias then goes through a binary add on the blocked output.
TEST(ConvTranspose2dOnednn, MatchesReferenceOnBlockedActivations) {
  const Case cases[] = {
      {.n = 2, .c = 32, .h = 5, .w = 7, .out = 16, .kernel = 3, .stride = 2, .output_pad = 1},
      {.n = 2, .c = 16, .h = 6, .w = 5, .out = 32, .kernel = 3, .stride = 2, .bias = false},
      {.n = 1, .c = 16, .h = 5, .w = 5, .out = 3, .kernel = 3, .stride = 2, .output_pad = 1},
  };
  uint32_t seed = 1;
  for (const Case& c : cases)
    check_variant(conv_transpose2d_onednn_variant(), attrs_of(c), {{c.n, c.c, c.h, c.w}},
                  name_of(c) + " blocked", seed++, CheckOptions{.blocked = true});
  const Case fused{.n = 1,
                   .c = 16,
                   .h = 5,
                   .w = 5,
                   .out = 32,
                   .kernel = 3,
                   .stride = 2,
                   .output_pad = 1,
                   .activation = "relu"};
  CheckOptions options = activation_options();
  options.blocked = true;
  check_variant(conv_transpose2d_onednn_variant(), attrs_of(fused), {{1, 16, 5, 5}},
                name_of(fused) + " blocked", seed, options);
}

TEST(ConvTranspose2dOnednn, ActivationMatchesReference) {
  const CheckOptions eval_only = activation_options();
  uint32_t seed = 1;
  for (const char* activation : {"relu", "relu6"}) {
    for (Case c : sweep()) {
      c.activation = activation;
      check_variant(conv_transpose2d_onednn_variant(), attrs_of(c), {{c.n, c.c, c.h, c.w}},
                    name_of(c), seed++, eval_only);
    }
    for (bool bias : {true, false}) {
      Case decoder = kDecoder;
      decoder.bias = bias;
      decoder.activation = activation;
      check_variant(conv_transpose2d_onednn_variant(), attrs_of(decoder), {{2, 64, 8, 8}},
                    name_of(decoder), seed++, eval_only);
    }
  }
}

TEST(ConvTranspose2dOnednn, ActivationIsForwardOnly) {
  const Attrs attrs =
      attrs_of({.c = 3, .h = 5, .w = 5, .out = 2, .kernel = 3, .stride = 2, .activation = "relu6"});
  OpHarness h("conv_transpose2d", attrs, {{1, 3, 5, 5}});
  h.op = conv_transpose2d_onednn_variant().create(attrs);
  h.forward(Mode::kEval);
  EXPECT_THROW(h.backward(), OpError);
}

TEST(ConvTranspose2dOnednn, SkipsNullGradients) {
  const Case dense{
      .n = 3, .c = 7, .h = 9, .w = 9, .out = 17, .kernel = 3, .stride = 2, .output_pad = 1};
  check_skipped_gradients([&](uint32_t seed, Wanted wanted) { check_case(dense, seed, wanted); });
}

TEST(ConvTranspose2dOnednn, NewInputShapeGetsItsOwnPrimitives) {
  const Case small{.n = 1, .c = 3, .h = 9, .w = 9, .out = 7, .kernel = 3, .stride = 2};
  Case large = small;
  large.n = 3;
  large.h = large.w = 13;
  std::vector<std::pair<std::string, Shape>> cases;
  for (const Case& c : {small, large, small}) cases.push_back({name_of(c), {c.n, c.c, c.h, c.w}});
  check_forward_per_shape(conv_transpose2d_onednn_variant(), attrs_of(small), cases);
}

TEST(ConvTranspose2dOnednn, SupportsExplainsRejections) {
  Case c{.c = 4, .h = 5, .w = 5, .out = 2, .kernel = 3, .stride = 2, .pad = 1, .output_pad = 1};
  const std::vector<Shape> fits = {{1, 4, 5, 5}};
  const std::vector<Shape> rank3 = {{4, 5, 5}};
  EXPECT_EQ(conv_transpose2d_onednn_variant().supports(attrs_of(c), fits), "");
  EXPECT_NE(conv_transpose2d_onednn_variant().supports(attrs_of(c), rank3).find("rank 4"),
            std::string::npos);
  c.output_pad = 2;  // must be < stride
  EXPECT_NE(conv_transpose2d_onednn_variant().supports(attrs_of(c), fits).find("output_pad"),
            std::string::npos);
  EXPECT_EQ(conv_transpose2d_onednn_variant().op, "conv_transpose2d");
  EXPECT_EQ(conv_transpose2d_onednn_variant().backend, "onednn");
}

}  // namespace
}  // namespace emt::test
