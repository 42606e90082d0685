// The bf16 forward of every variant that takes bf16 (OpVariant::bf16), against its f32
// reference kernel. Inputs and params are first rounded to bf16, so that the reference sees
// exactly the numbers the variant does: what remains is the variant's own rounding of its
// bf16 output, at most half a bf16 ulp (2^-9 relative, 8 mantissa bits), and f32 accumulation
// in another order (~1e-6 here). The tolerance, 2^-8 of the magnitude plus 1e-5 absolute,
// sits above that and far below a wrong index, a lost bias or a misread dtype (off by O(1)).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ops/add/add_onednn.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/conv2d_onednn.h"
#include "ops/conv_transpose2d/conv_transpose2d.h"
#include "ops/conv_transpose2d/conv_transpose2d_onednn.h"
#include "ops/global_avg_pool/global_avg_pool_onednn.h"
#include "ops/registry.h"
#include "ops/registry_onednn.h"
#include "ops/relu/relu_onednn.h"
#include "ops/relu6/relu6_onednn.h"
#include "ops/sigmoid/sigmoid_onednn.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

constexpr float kRelTol = 1.0f / 256, kAbsTol = 1e-5f;

float round_bf16(float v) { return from_bf16(to_bf16(v)); }

// A tensor of `shape` as a plan keeps it: blocked bf16 when its shape can be blocked and `bf16`,
// else plain f32. Holds numel floats, as an arena slot does.
struct Buffer {
  std::vector<float> data;
  Tensor view;

  Buffer(const Shape& shape, bool bf16) : data(static_cast<size_t>(shape_numel(shape))) {
    const bool blocked = bf16 && can_block_channels(shape);
    view = {data.data(), shape, blocked ? Layout::kChannelBlocked : Layout::kPlain,
            blocked ? DataType::kBF16 : DataType::kF32};
  }

  void set(const std::vector<float>& plain) {
    if (view.dtype == DataType::kF32) {
      data = plain;
      view.data = data.data();
      return;
    }
    std::vector<float> blocked(plain.size());
    block_channels(plain.data(), view.shape, blocked.data());
    auto* bits = reinterpret_cast<uint16_t*>(data.data());
    for (size_t i = 0; i < blocked.size(); ++i) bits[i] = to_bf16(blocked[i]);
  }

  std::vector<float> get() const {
    if (view.dtype == DataType::kF32) return data;
    std::vector<float> blocked(data.size()), plain(data.size());
    const auto* bits = reinterpret_cast<const uint16_t*>(data.data());
    for (size_t i = 0; i < blocked.size(); ++i) blocked[i] = from_bf16(bits[i]);
    unblock_channels(blocked.data(), view.shape, plain.data());
    return plain;
  }
};

// One eval forward of the variant with bf16 activations (`bf16_inputs` chooses per input; the
// output is bf16 when its shape can be blocked), against the reference on the same numbers.
void check_bf16(const OpVariant& variant, const Attrs& attrs, const std::vector<Shape>& shapes,
                const std::string& repro, std::vector<bool> bf16_inputs = {}, float scale = 1) {
  bf16_inputs.resize(shapes.size(), true);
  OpHarness ref(variant.op, attrs, shapes);
  ASSERT_EQ(variant.supports(attrs, shapes), "") << repro;
  std::mt19937 rng(11);
  ref.randomize(rng);
  for (auto& input : ref.inputs)
    for (float& v : input) v = round_bf16(scale * v);
  for (auto& param : ref.params)
    for (float& v : param) v = round_bf16(v);
  ref.forward(Mode::kEval);

  const std::unique_ptr<Op> op = variant.create(attrs);
  std::vector<Buffer> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    inputs.emplace_back(shapes[i], bf16_inputs[i]);
    inputs.back().set(ref.inputs[i]);
  }
  Buffer output(ref.inferred.outputs[0], true);
  std::vector<Tensor> in, params;
  for (const Buffer& b : inputs) in.push_back(b.view);
  for (size_t p = 0; p < ref.params.size(); ++p)
    params.push_back({ref.params[p].data(), ref.inferred.params[p].shape});
  // Twice: the second call runs the cached primitives and the cached bf16 weights.
  for (int pass = 0; pass < 2; ++pass) {
    op->forward({in, params, std::span<const Tensor>(&output.view, 1), Mode::kEval, 7, 1});
    const std::vector<float> got = output.get(), want = ref.outputs[0];
    ASSERT_EQ(got.size(), want.size());
    float worst = 0;
    bool ok = true;
    for (size_t i = 0; i < got.size(); ++i) {
      const float err = std::abs(got[i] - want[i]);
      worst = std::max(worst, err);
      ok = ok && err <= kRelTol * std::abs(want[i]) + kAbsTol;
    }
    char line[256];
    std::snprintf(line, sizeof line, "%s bf16 -> %s pass %d max_abs_err=%.2g tol=2^-8*|ref|+1e-5",
                  repro.c_str(), dtype_name(output.view.dtype), pass, worst);
    EXPECT_TRUE(ok) << line;
  }
}

class Bf16Variant : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = onednn_bf16_unsupported_reason();
    if (!reason.empty()) GTEST_SKIP() << "this CPU cannot run bf16: " << reason;
  }
};

Attrs conv_attrs(int64_t out, int64_t kernel, int64_t stride, bool depthwise,
                 const std::string& activation) {
  Attrs a;
  if (!depthwise) a.set("out", out);
  a.set("kernel", kernel);
  a.set("stride", stride);
  a.set("depthwise", depthwise);
  a.set("bias", true);
  a.set("activation", activation);
  return complete_attrs(conv2d_schema(), a);
}

TEST_F(Bf16Variant, Conv2d) {
  const OpVariant& v = conv2d_onednn_variant();
  // Pointwise, depthwise stride 2 with odd input, a full 3x3, fused activations.
  check_bf16(v, conv_attrs(48, 1, 1, false, "relu"), {{2, 32, 7, 9}}, "conv2d n2c32h7w9 o48 k1");
  check_bf16(v, conv_attrs(0, 3, 2, true, "relu6"), {{2, 32, 13, 11}}, "conv2d n2c32h13w11 dw k3s2",
             {}, 8);
  check_bf16(v, conv_attrs(16, 3, 1, false, "none"), {{1, 16, 10, 10}},
             "conv2d n1c16h10w10 o16 k3");
  // The stem: a plain f32 image in, bf16 out (src converted by the primitive's reorder).
  check_bf16(v, conv_attrs(32, 3, 2, false, "relu"), {{2, 3, 17, 17}}, "conv2d n2c3h17w17 o32 k3s2",
             {false});
  // bf16 in, plain f32 out: the segmentation logit.
  check_bf16(v, conv_attrs(1, 1, 1, false, "none"), {{2, 32, 8, 8}}, "conv2d n2c32h8w8 o1 k1");
}

TEST_F(Bf16Variant, ConvTranspose2d) {
  for (const std::string activation : {"none", "relu"})
    for (bool bias : {false, true}) {
      Attrs a;
      a.set("out", int64_t{32});
      a.set("kernel", int64_t{3});
      a.set("stride", int64_t{2});
      a.set("pad", int64_t{1});
      a.set("output_pad", int64_t{1});
      a.set("bias", bias);
      a.set("activation", activation);
      check_bf16(conv_transpose2d_onednn_variant(), complete_attrs(conv_transpose2d_schema(), a),
                 {{2, 16, 5, 7}},
                 "conv_transpose2d n2c16h5w7 o32 k3s2 act=" + activation +
                     " bias=" + std::to_string(bias));
    }
}

TEST_F(Bf16Variant, AddAndActivations) {
  const Shape shape{2, 32, 5, 3};
  check_bf16(add_onednn_variant(), complete_attrs(*find_op_schema("add"), {}), {shape, shape},
             "add n2c32h5w3");
  for (const OpVariant* v :
       {&relu_onednn_variant(), &relu6_onednn_variant(), &sigmoid_onednn_variant()})
    check_bf16(*v, complete_attrs(*find_op_schema(v->op), {}), {shape}, v->op + " n2c32h5w3", {},
               8);
}

TEST_F(Bf16Variant, GlobalAvgPoolIntoF32) {
  check_bf16(global_avg_pool_onednn_variant(),
             complete_attrs(*find_op_schema("global_avg_pool"), {}), {{2, 48, 7, 5}},
             "global_avg_pool n2c48h7w5");
}

}  // namespace
}  // namespace emt::test
