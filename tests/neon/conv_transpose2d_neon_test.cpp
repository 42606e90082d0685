#include "ops/conv_transpose2d/conv_transpose2d_neon.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ops/conv_transpose2d/conv_transpose2d.h"
#include "ops/registry.h"
#include "tests/neon/conv_cases.h"
#include "tests/neon/neon_check.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

constexpr ConvDirection kTransposed = ConvDirection::kTransposed;

// The geometry ConvTranspose2dOp builds for an [n, c, h, w] input (the conv2d it transposes),
// from the op itself.
ConvGeometry transposed_geometry(const Shape& input, int64_t out, int64_t kernel, int64_t stride,
                                 int64_t pad, int64_t output_pad) {
  Attrs attrs;
  attrs.set("out", out);
  attrs.set("kernel", kernel);
  attrs.set("stride", stride);
  attrs.set("pad", pad);
  attrs.set("output_pad", output_pad);
  const std::unique_ptr<Op> op = create_op("conv_transpose2d", attrs);
  return dynamic_cast<const ConvTranspose2dOp&>(*op).geometry(input);
}

TEST(ConvTranspose2dNeon, MatchesReferenceOnRandomShapes) {
  uint32_t seed = 1;
  for (const ConvCase& c : random_conv_cases(77, 400)) check_conv_case(kTransposed, c, seed++);
}

// EMT-Net's decoder (kernel 3, stride 2, pad 1, output_pad 1 doubling the size, at each stage's
// channel count) and 1x1 transposed convolutions, plus output_pad 0 and wider strides.
TEST(ConvTranspose2dNeon, MatchesReferenceOnDecoderShapes) {
  const std::vector<ConvCase> cases = {
      {transposed_geometry({1, 128, 2, 2}, 128, 3, 2, 1, 1), false, ConvActivation::kRelu},
      {transposed_geometry({3, 64, 4, 4}, 64, 3, 2, 1, 1), true, ConvActivation::kRelu},
      {transposed_geometry({1, 32, 16, 16}, 32, 3, 2, 1, 1), false, ConvActivation::kRelu6},
      {transposed_geometry({1, 16, 32, 32}, 32, 3, 2, 1, 1), true, ConvActivation::kRelu},
      {transposed_geometry({3, 5, 7, 9}, 3, 3, 2, 1, 0), true, ConvActivation::kNone},
      {transposed_geometry({1, 64, 8, 8}, 32, 1, 1, 0, 0), true, ConvActivation::kRelu},
      {transposed_geometry({3, 9, 5, 3}, 13, 1, 1, 0, 0), false, ConvActivation::kRelu6},
      {transposed_geometry({1, 7, 1, 1}, 5, 1, 1, 0, 0), true, ConvActivation::kNone},
      {transposed_geometry({1, 6, 5, 6}, 4, 2, 3, 0, 2), true, ConvActivation::kNone},
      {transposed_geometry({1, 6, 4, 5}, 4, 4, 2, 1, 1), true, ConvActivation::kRelu},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) check_conv_case(kTransposed, c, seed++);
}

// The op's own forward on EMT-Net's decoder upsampling.
TEST(ConvTranspose2dNeon, AgreesWithTheConvTranspose2dOp) {
  std::mt19937 rng(13);
  const Shape shape{2, 12, 5, 7};
  Attrs attrs;
  attrs.set("out", int64_t{9});
  attrs.set("kernel", int64_t{3});
  attrs.set("stride", int64_t{2});
  attrs.set("pad", int64_t{1});
  attrs.set("output_pad", int64_t{1});
  attrs.set("activation", std::string("relu"));
  OpHarness ref("conv_transpose2d", attrs, {shape});
  ref.randomize(rng);
  ref.forward(Mode::kEval);
  const ConvGeometry g = transposed_geometry(shape, 9, 3, 2, 1, 1);
  const std::string repro = "conv_transpose2d_neon vs conv_transpose2d op " + shape_str(shape);
  GuardedOutput y(shape_numel(ref.inferred.outputs[0]));
  conv_transpose2d_neon(g, ref.inputs[0].data(), ref.params[0].data(), ref.params[1].data(),
                        ConvActivation::kRelu, y.data());
  expect_close(repro, y.values(repro), ref.outputs[0], 1e-5 * std::sqrt(12.0 * 9));
}

}  // namespace
}  // namespace emt::test
