#include "ops/conv2d/conv2d_neon.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/neon/conv_cases.h"
#include "tests/neon/neon_check.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

constexpr ConvDirection kForward = ConvDirection::kForward;

ConvPadding same_tf(int64_t kernel, int64_t stride, int64_t h, int64_t w) {
  return resolve_conv_padding(ConvPadMode::kSameTf, -1, kernel, stride, h, w);
}

TEST(Conv2dNeon, MatchesReferenceOnRandomShapes) {
  uint32_t seed = 1;
  for (const ConvCase& c : random_conv_cases(2024, 400)) check_conv_case(kForward, c, seed++);
}

// MobileNetV1 at a 64x64 input with TF SAME padding (the pretrained graphs) and explicit padding,
// and the decoder's convolutions: the stem, the depthwise and pointwise layers at every stage's
// channel count, planes down to 2x2 and 1x1, and the 3x3 convolutions with 32 and 1 outputs.
TEST(Conv2dNeon, MatchesReferenceOnEmtNetLayers) {
  const ConvPadding pad1{1, 1, 1, 1}, none{};
  const auto relu6 = ConvActivation::kRelu6, relu = ConvActivation::kRelu;
  const std::vector<ConvCase> cases = {
      {conv_geometry(1, 3, 64, 64, 32, 3, 2, 1, same_tf(3, 2, 64, 64)), false, relu6},
      {conv_geometry(3, 3, 64, 64, 32, 3, 2, 1, pad1), true, relu},
      {conv_geometry(1, 32, 32, 32, 32, 3, 1, 32, same_tf(3, 1, 32, 32)), false, relu6},
      {conv_geometry(1, 64, 32, 32, 64, 3, 2, 64, same_tf(3, 2, 32, 32)), false, relu6},
      {conv_geometry(3, 128, 16, 16, 128, 3, 2, 128, pad1), true, relu},
      {conv_geometry(1, 512, 4, 4, 512, 3, 1, 512, pad1), true, relu},
      {conv_geometry(1, 1024, 2, 2, 1024, 3, 1, 1024, same_tf(3, 1, 2, 2)), false, relu6},
      {conv_geometry(1, 32, 32, 32, 64, 1, 1, 1, none), false, relu6},
      {conv_geometry(3, 64, 16, 16, 128, 1, 1, 1, none), true, relu},
      {conv_geometry(1, 512, 4, 4, 512, 1, 1, 1, none), true, relu},
      {conv_geometry(1, 512, 2, 2, 1024, 1, 1, 1, none), false, relu6},
      {conv_geometry(1, 1024, 1, 1, 256, 1, 1, 1, none), true, relu},
      {conv_geometry(1, 32, 64, 64, 32, 3, 1, 1, pad1), true, relu},
      {conv_geometry(3, 32, 33, 31, 1, 3, 1, 1, pad1), true, ConvActivation::kNone},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) check_conv_case(kForward, c, seed++);
}

// Each activation with and without bias on each kernel: the pointwise GEMM (its tile sizes and
// its narrow-plane path), the depthwise 3x3 at both strides and the direct convolution.
TEST(Conv2dNeon, EveryActivationAndBiasOnEveryKernel) {
  const std::vector<ConvGeometry> geometries = {
      conv_geometry(3, 17, 5, 7, 13, 1, 1, 1, {}),
      conv_geometry(1, 9, 1, 3, 5, 1, 1, 1, {}),
      conv_geometry(3, 10, 9, 1, 10, 3, 1, 10, {1, 1, 1, 1}),
      conv_geometry(1, 7, 10, 19, 7, 3, 2, 7, same_tf(3, 2, 10, 19)),
      conv_geometry(3, 6, 11, 9, 9, 3, 2, 3, {0, 1, 2, 0}),
  };
  uint32_t seed = 1;
  for (const ConvGeometry& g : geometries)
    for (ConvActivation act :
         {ConvActivation::kNone, ConvActivation::kRelu, ConvActivation::kRelu6})
      for (bool bias : {false, true}) check_conv_case(kForward, {g, bias, act}, seed++);
}

// Depthwise 3x3 planes too large for the kernel's zero-padded copy (MobileNet's 112x112), whose
// edges take the border path, and one too narrow for a vector.
TEST(Conv2dNeon, DepthwiseOnLargePlanes) {
  const std::vector<ConvCase> cases = {
      {conv_geometry(1, 5, 112, 112, 5, 3, 1, 5, {1, 1, 1, 1}), true, ConvActivation::kRelu6},
      {conv_geometry(1, 3, 112, 112, 3, 3, 2, 3, same_tf(3, 2, 112, 112)), false,
       ConvActivation::kRelu},
      {conv_geometry(3, 2, 70, 67, 2, 3, 2, 2, {2, 0, 1, 2}), true, ConvActivation::kNone},
      {conv_geometry(1, 4, 90, 3, 4, 3, 1, 4, {1, 1, 1, 1}), true, ConvActivation::kNone},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) check_conv_case(kForward, c, seed++);
}

// Filters too large for the kernel's packed copy (17x17 for a tile of 8 channels) still convolve,
// position by position; a tile of 4 channels packs them.
TEST(Conv2dNeon, FiltersTooLargeToPack) {
  check_conv_case(kForward, {conv_geometry(1, 2, 21, 19, 13, 17, 1, 1, {8, 8, 8, 8}), true}, 1);
}

// The geometry as the conv2d op resolves it from its attributes: TF SAME with a 3x3 stride-2
// window on even and odd inputs, through the op's own forward.
TEST(Conv2dNeon, AgreesWithTheConv2dOp) {
  std::mt19937 rng(12);
  for (const Shape& shape : std::vector<Shape>{{1, 3, 16, 16}, {3, 5, 9, 12}}) {
    Attrs attrs;
    attrs.set("out", int64_t{8});
    attrs.set("kernel", int64_t{3});
    attrs.set("stride", int64_t{2});
    attrs.set("pad_mode", std::string("same_tf"));
    attrs.set("activation", std::string("relu6"));
    OpHarness ref("conv2d", attrs, {shape});
    ref.randomize(rng, -2.0f, 2.0f);
    ref.forward(Mode::kEval);
    const ConvGeometry g = conv_geometry(shape[0], shape[1], shape[2], shape[3], 8, 3, 2, 1,
                                         same_tf(3, 2, shape[2], shape[3]));
    const std::string repro = "conv2d_neon vs conv2d op " + shape_str(shape);
    GuardedOutput y(shape_numel(ref.inferred.outputs[0]));
    conv2d_neon(g, ref.inputs[0].data(), ref.params[0].data(), ref.params[1].data(),
                ConvActivation::kRelu6, y.data());
    expect_close(repro, y.values(repro), ref.outputs[0], 1e-5 * std::sqrt(27.0));
  }
}

}  // namespace
}  // namespace emt::test
