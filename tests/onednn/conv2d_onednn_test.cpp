// The oneDNN conv2d must agree with the reference op: same inference, same outputs, and
// gradients that accumulate into the engine's buffers exactly as the reference's do.
#include "ops/conv2d/conv2d_onednn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ops/conv2d/conv2d.h"
#include "ops/registry.h"
#include "tests/onednn/variant_check.h"

namespace emt::test {
namespace {

struct Case {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t out = 1, kernel = 1, stride = 1, pad = -1, groups = 1;
  bool depthwise = false, bias = true;
  std::string activation = "none";
  std::string pad_mode = "explicit";
};

Attrs attrs_of(const Case& c) {
  Attrs a;
  if (!c.depthwise) a.set("out", c.out);
  a.set("kernel", c.kernel);
  a.set("stride", c.stride);
  a.set("pad", c.pad);
  a.set("groups", c.groups);
  a.set("depthwise", c.depthwise);
  a.set("bias", c.bias);
  a.set("activation", c.activation);
  a.set("pad_mode", c.pad_mode);
  return complete_attrs(conv2d_schema(), a);
}

// "conv2d n1c17h9w9 o17 k3 s2 p-1 g17 bias=1": every field needed to rerun the case.
std::string name_of(const Case& c) {
  const int64_t groups = c.depthwise ? c.c : c.groups;
  return "conv2d n" + std::to_string(c.n) + "c" + std::to_string(c.c) + "h" + std::to_string(c.h) +
         "w" + std::to_string(c.w) + " o" + std::to_string(c.depthwise ? c.c : c.out) + " k" +
         std::to_string(c.kernel) + " s" + std::to_string(c.stride) + " p" + std::to_string(c.pad) +
         " g" + std::to_string(groups) + " bias=" + std::to_string(c.bias) +
         (c.activation == "none" ? "" : " " + c.activation) +
         (c.pad_mode == "explicit" ? "" : " " + c.pad_mode);
}

void check_case(const Case& c, uint32_t seed, Wanted wanted = {}) {
  const Attrs attrs = attrs_of(c);
  const std::vector<Shape> shapes = {{c.n, c.c, c.h, c.w}};
  check_variant(conv2d_onednn_variant(), attrs, shapes, name_of(c), seed, wanted);
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
        for (bool dw : {false, true}) {
          Case c;
          c.n = pick({1, 3});
          c.c = ch;
          c.h = pick({1, 5, 9, 13});
          c.w = pick({5, 7, 9, 17});
          c.out = pick({1, 3, 7, 17});
          c.kernel = k;
          c.stride = s;
          c.pad = k == 1 ? pick({-1, 0}) : pick({-1, -1, 0, 2});
          c.depthwise = dw;
          c.bias = rng() % 2 == 0;
          cases.push_back(c);
        }
  return cases;
}

TEST(Conv2dOnednn, MatchesReferenceOnAwkwardShapes) {
  uint32_t seed = 1;
  for (const Case& c : sweep()) check_case(c, seed++);
}

TEST(Conv2dOnednn, MatchesReferenceOnGroupsAndEvenSizes) {
  // Grouped but not depthwise (goihw with several channels per group), depthwise given as
  // explicit groups, depthwise on a single channel (which is groups=1), even sizes at
  // stride 2, and channel counts that fill oneDNN's 16-channel blocks: the 1x1 runs on plain
  // layouts, the depthwise on blocked ones.
  check_case({.n = 2, .c = 6, .h = 8, .w = 10, .out = 9, .kernel = 3, .stride = 2, .groups = 3}, 1);
  check_case({.n = 3, .c = 12, .h = 7, .w = 7, .out = 4, .kernel = 1, .stride = 1, .groups = 2}, 2);
  check_case({.n = 1, .c = 7, .h = 9, .w = 9, .out = 7, .kernel = 3, .stride = 2, .groups = 7}, 3);
  check_case({.n = 3, .c = 1, .h = 6, .w = 4, .kernel = 3, .stride = 2, .depthwise = true}, 4);
  check_case({.n = 2, .c = 32, .h = 16, .w = 16, .out = 64, .kernel = 1, .stride = 1}, 5);
  check_case({.n = 2, .c = 32, .h = 16, .w = 16, .kernel = 3, .stride = 2, .depthwise = true}, 6);
}

// The activation runs as an eltwise post-op: on the plain-layout GEMM path (1x1) as on the
// blocked one, with and without bias. Forward only, so eval passes; inputs scaled so that
// relu6 clips.
// One output channel runs on the dedicated kernels (ops/conv2d/conv2d_one_output.h) instead of
// oneDNN's, whatever the src layout: the same contract, forward and accumulating backward.
TEST(Conv2dOnednn, WritesAGradientKnownToBeZero) {
  const Case c{.n = 2, .c = 16, .h = 9, .w = 7, .out = 32, .kernel = 3, .stride = 2};
  for (bool blocked : {false, true})
    check_variant(conv2d_onednn_variant(), attrs_of(c), {{c.n, c.c, c.h, c.w}}, name_of(c), 1,
                  {.passes = {{}}, .blocked = blocked, .zeroed_grad_input = true});
}

TEST(Conv2dOnednn, SingleOutputChannelMatchesReference) {
  const Case cases[] = {
      {.n = 2, .c = 32, .h = 9, .w = 13, .out = 1, .kernel = 3},
      {.n = 1, .c = 3, .h = 11, .w = 9, .out = 1, .kernel = 5, .stride = 2, .bias = false},
      {.n = 3, .c = 7, .h = 6, .w = 6, .out = 1, .kernel = 3, .stride = 2, .pad_mode = "same_tf"},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) check_case(c, seed++);
  for (const Case& c : cases)
    check_skipped_gradients([&](uint32_t s, Wanted wanted) { check_case(c, s, wanted); });
  const Case blocked{.n = 2, .c = 48, .h = 7, .w = 9, .out = 1, .kernel = 3, .stride = 2};
  check_variant(conv2d_onednn_variant(), attrs_of(blocked), {{2, 48, 7, 9}},
                name_of(blocked) + " blocked", seed, CheckOptions{.blocked = true});
}

// As a compiled plan runs them: activations with whole 16-channel blocks arrive and leave
// blocked (nChw16c), the others plain, so the stem (3 -> 16) and the mask logit (16 -> 1) mix
// the two.
TEST(Conv2dOnednn, MatchesReferenceOnBlockedActivations) {
  const Case cases[] = {
      {.n = 2, .c = 16, .h = 9, .w = 11, .out = 32, .kernel = 3},
      {.n = 2, .c = 32, .h = 9, .w = 9, .out = 16, .kernel = 3, .stride = 2, .bias = false},
      {.n = 2, .c = 32, .h = 7, .w = 13, .kernel = 3, .depthwise = true},
      {.n = 1, .c = 32, .h = 9, .w = 9, .kernel = 3, .stride = 2, .depthwise = true},
      {.n = 2, .c = 32, .h = 5, .w = 7, .out = 48, .kernel = 1},
      {.n = 2, .c = 3, .h = 11, .w = 9, .out = 16, .kernel = 3, .stride = 2},
      {.n = 2, .c = 16, .h = 9, .w = 7, .out = 1, .kernel = 3},
  };
  uint32_t seed = 1;
  for (const Case& c : cases)
    check_variant(conv2d_onednn_variant(), attrs_of(c), {{c.n, c.c, c.h, c.w}},
                  name_of(c) + " blocked", seed++, CheckOptions{.blocked = true});
  const Case fused{.n = 1, .c = 16, .h = 7, .w = 7, .out = 32, .kernel = 3, .activation = "relu6"};
  CheckOptions options = activation_options();
  options.blocked = true;
  check_variant(conv2d_onednn_variant(), attrs_of(fused), {{1, 16, 7, 7}},
                name_of(fused) + " blocked", seed, options);
}

TEST(Conv2dOnednn, ActivationMatchesReference) {
  const CheckOptions eval_only = activation_options();
  uint32_t seed = 1;
  for (const char* activation : {"relu", "relu6"}) {
    for (Case c : sweep()) {
      c.activation = activation;
      check_variant(conv2d_onednn_variant(), attrs_of(c), {{c.n, c.c, c.h, c.w}}, name_of(c),
                    seed++, eval_only);
    }
    check_variant(
        conv2d_onednn_variant(),
        attrs_of({.n = 2, .c = 32, .h = 16, .w = 16, .out = 64, .activation = activation}),
        {{2, 32, 16, 16}}, std::string("pointwise ") + activation, seed++, eval_only);
  }
}

// TF SAME padding reaches oneDNN as asymmetric padding_l / padding_r: forward and both
// backward primitives, on the plain (1x1) and blocked layouts, odd and even sizes.
TEST(Conv2dOnednn, SameTfMatchesReference) {
  uint32_t seed = 100;
  for (Case c : sweep()) {
    c.pad = -1;
    c.pad_mode = "same_tf";
    check_case(c, seed++);
  }
  std::vector<Case> even = {
      // MobileNet's stride-2 stem and depthwise layers on even inputs: 0 before, 1 after.
      {.n = 2, .c = 3, .h = 16, .w = 16, .out = 8, .kernel = 3, .stride = 2},
      {.n = 2, .c = 32, .h = 16, .w = 16, .kernel = 3, .stride = 2, .depthwise = true},
      {.n = 1, .c = 17, .h = 8, .w = 7, .kernel = 3, .stride = 2, .depthwise = true},
      {.n = 2, .c = 6, .h = 8, .w = 10, .out = 9, .kernel = 3, .stride = 2, .groups = 3},
      // An even kernel pads asymmetrically at stride 1 too.
      {.n = 1, .c = 4, .h = 5, .w = 6, .out = 3, .kernel = 2, .stride = 1},
      {.n = 2, .c = 32, .h = 6, .w = 6, .out = 16, .kernel = 1, .stride = 1},
  };
  for (Case c : even) {
    c.pad_mode = "same_tf";
    check_case(c, seed++);
  }
  // With the fused activation the compiler sets on inference.
  const CheckOptions eval_only = activation_options();
  for (Case c : even) {
    c.pad_mode = "same_tf";
    c.activation = "relu6";
    check_variant(conv2d_onednn_variant(), attrs_of(c), {{c.n, c.c, c.h, c.w}}, name_of(c), seed++,
                  eval_only);
  }
}

// The variant keeps its reordered weights while ForwardArgs::params_version stays, and must
// reorder again once it moves: a stale copy would keep the first weights' output.
TEST(Conv2dOnednn, ReorderedWeightsFollowTheParamsVersion) {
  const Case c{.n = 2, .c = 16, .h = 7, .w = 7, .out = 32, .kernel = 3};
  const Attrs attrs = attrs_of(c);
  const Shape shape{c.n, c.c, c.h, c.w};
  OpHarness ref("conv2d", attrs, {shape});
  std::mt19937 rng(3);
  ref.randomize(rng);
  const std::unique_ptr<Op> op = conv2d_onednn_variant().create(attrs);
  std::vector<float> out(ref.outputs[0].size());
  auto run = [&](uint64_t version) {
    const std::vector<Tensor> in = {{ref.inputs[0].data(), shape}};
    const std::vector<Tensor> params = {{ref.params[0].data(), ref.inferred.params[0].shape},
                                        {ref.params[1].data(), ref.inferred.params[1].shape}};
    const std::vector<Tensor> outs = {{out.data(), ref.inferred.outputs[0]}};
    op->forward({in, params, outs, Mode::kEval, 0, version});
    ref.forward(Mode::kEval);
  };
  run(1);
  expect_close("version 1", "output", out, ref.outputs[0]);
  for (float& w : ref.params[0]) w = -2 * w;
  run(2);
  expect_close("weights changed, version 2", "output", out, ref.outputs[0]);
  run(2);
  expect_close("version 2 again", "output", out, ref.outputs[0]);
}

// A fused skip addition (ConvSpec::residual): dst = act(conv(x) + b) + residual, the residual a
// second input in either layout, against the reference conv followed by the addition.
TEST(Conv2dOnednn, ResidualInputIsAddedAfterTheActivation) {
  const Case c{.n = 2, .c = 16, .h = 7, .w = 9, .out = 32, .kernel = 1, .activation = "relu"};
  const Attrs attrs = attrs_of(c);
  const Shape shape{c.n, c.c, c.h, c.w};
  for (bool blocked : {false, true}) {
    OpHarness ref("conv2d", attrs, {shape});
    std::mt19937 rng(4);
    ref.randomize(rng);
    ref.forward(Mode::kEval);
    const Shape out_shape = ref.inferred.outputs[0];
    std::vector<float> residual(ref.outputs[0].size());
    std::uniform_real_distribution<float> dist(-1, 1);
    for (float& v : residual) v = dist(rng);
    std::vector<float> want = ref.outputs[0];
    for (size_t i = 0; i < want.size(); ++i) want[i] += residual[i];

    const Layout layout = blocked ? Layout::kChannelBlocked : Layout::kPlain;
    auto in_layout = [&](const std::vector<float>& plain, const Shape& s) {
      if (!blocked) return plain;
      std::vector<float> out(plain.size());
      block_channels(plain.data(), s, out.data());
      return out;
    };
    const std::vector<float> x = in_layout(ref.inputs[0], shape);
    const std::vector<float> r = in_layout(residual, out_shape);
    std::vector<float> out(want.size());
    const std::unique_ptr<Op> op = conv2d_onednn_variant().create(attrs);
    const std::vector<Shape> shapes = {shape, out_shape};
    EXPECT_EQ(op->infer(shapes).outputs[0], out_shape);
    const std::vector<Tensor> inputs = {{const_cast<float*>(x.data()), shape, layout},
                                        {const_cast<float*>(r.data()), out_shape, layout}};
    const std::vector<Tensor> params = {{ref.params[0].data(), ref.inferred.params[0].shape},
                                        {ref.params[1].data(), ref.inferred.params[1].shape}};
    const std::vector<Tensor> outs = {{out.data(), out_shape, layout}};
    op->forward({inputs, params, outs, Mode::kEval});
    std::vector<float> got(out.size());
    if (blocked)
      unblock_channels(out.data(), out_shape, got.data());
    else
      got = out;
    expect_close(name_of(c) + (blocked ? " blocked" : ""), "output + residual", got, want);
  }
  // The residual must have the output's shape.
  const std::unique_ptr<Op> op = conv2d_onednn_variant().create(attrs);
  const std::vector<Shape> wrong = {shape, {2, 16, 7, 9}};
  EXPECT_THROW(op->infer(wrong), OpError);
}

TEST(Conv2dOnednn, ActivationIsForwardOnly) {
  const Attrs attrs =
      attrs_of({.c = 3, .h = 5, .w = 5, .out = 2, .kernel = 3, .activation = "relu"});
  OpHarness h("conv2d", attrs, {{1, 3, 5, 5}});
  h.op = conv2d_onednn_variant().create(attrs);
  h.forward(Mode::kEval);
  EXPECT_THROW(h.backward(), OpError);
}

TEST(Conv2dOnednn, SkipsNullGradients) {
  const Case dense{.n = 3, .c = 7, .h = 9, .w = 9, .out = 17, .kernel = 3, .stride = 2};
  check_skipped_gradients([&](uint32_t seed, Wanted wanted) { check_case(dense, seed, wanted); });
}

TEST(Conv2dOnednn, NewInputShapeGetsItsOwnPrimitives) {
  const Case small{.n = 1, .c = 3, .h = 9, .w = 9, .out = 7, .kernel = 3, .stride = 2};
  Case large = small;
  large.n = 3;
  large.h = large.w = 13;
  std::vector<std::pair<std::string, Shape>> cases;
  for (const Case& c : {small, large, small}) cases.push_back({name_of(c), {c.n, c.c, c.h, c.w}});
  check_forward_per_shape(conv2d_onednn_variant(), attrs_of(small), cases);
}

TEST(Conv2dOnednn, SupportsExplainsRejections) {
  Attrs a;
  a.set("out", int64_t{4});
  a.set("kernel", int64_t{3});
  a.set("groups", int64_t{2});
  const Attrs attrs = complete_attrs(conv2d_schema(), a);
  const std::vector<Shape> fits = {{1, 6, 8, 8}};
  const std::vector<Shape> odd_channels = {{1, 5, 8, 8}};
  const std::vector<Shape> rank3 = {{5, 8, 8}};
  EXPECT_EQ(conv2d_onednn_variant().supports(attrs, fits), "");
  EXPECT_NE(conv2d_onednn_variant().supports(attrs, odd_channels).find("groups"),
            std::string::npos);
  EXPECT_NE(conv2d_onednn_variant().supports(attrs, rank3).find("rank 4"), std::string::npos);
  EXPECT_EQ(conv2d_onednn_variant().op, "conv2d");
  EXPECT_EQ(conv2d_onednn_variant().backend, "onednn");
}

}  // namespace
}  // namespace emt::test
