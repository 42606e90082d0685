#include "ops/conv2d/conv2d.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops/core/op_error.h"
#include "ops/registry.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

struct ConvCase {
  Shape in;
  int64_t out = 0, kernel = 3, stride = 1, pad = -1, groups = 1;
  bool depthwise = false, bias = true;
  std::string activation = "none";
  std::string pad_mode = "explicit";

  Attrs attrs() const {
    Attrs a;
    a.set("out", out);
    a.set("kernel", kernel);
    a.set("stride", stride);
    a.set("pad", pad);
    a.set("groups", groups);
    a.set("depthwise", depthwise);
    a.set("bias", bias);
    a.set("activation", activation);
    a.set("pad_mode", pad_mode);
    return a;
  }
  std::string describe() const { return describe_case("conv2d", attrs(), {in}); }

  // Resolved independently of the op, from the attribute documentation.
  int64_t cin() const { return in[1]; }
  int64_t cout() const { return depthwise ? cin() : out; }
  int64_t group_count() const { return depthwise ? cin() : groups; }
  bool same_tf() const { return pad_mode == "same_tf"; }
  int64_t padding() const { return pad < 0 ? (kernel - 1) / 2 : pad; }
  // TF SAME: total = max((ceil(size / stride) - 1) * stride + kernel - size, 0), floor half of
  // it before.
  int64_t same_total(int64_t size) const {
    const int64_t out_size = (size + stride - 1) / stride;
    return std::max<int64_t>((out_size - 1) * stride + kernel - size, 0);
  }
  int64_t pad_top() const { return same_tf() ? same_total(in[2]) / 2 : padding(); }
  int64_t pad_left() const { return same_tf() ? same_total(in[3]) / 2 : padding(); }
  int64_t ho() const {
    return same_tf() ? (in[2] + stride - 1) / stride
                     : (in[2] + 2 * padding() - kernel) / stride + 1;
  }
  int64_t wo() const {
    return same_tf() ? (in[3] + stride - 1) / stride
                     : (in[3] + 2 * padding() - kernel) / stride + 1;
  }
};

// Values of a naive computation plus, per element, the sum of |terms| it added: float32
// rounding is relative to that, not to the (possibly cancelled) value.
struct Naive {
  std::vector<double> value, scale;
  explicit Naive(size_t n = 0) : value(n, 0.0), scale(n, 0.0) {}
  void add(size_t i, double term) {
    value[i] += term;
    scale[i] += std::abs(term);
  }
};

struct NaiveConv {
  Naive y, grad_x, grad_w, grad_b;
};

// The textbook gather definition in double,
//   y[n,co,oh,ow] = b[co] + sum_{ci,kh,kw} w[co,ci,kh,kw] * x[n, g*Cin/G + ci, oh*s-pt+kh,
//   ow*s-pl+kw],
// with pt, pl the top and left padding,
// and, from the same loop nest, the gradients of sum(y * grad_y).
NaiveConv naive_conv2d(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                       const std::vector<float>& b, const std::vector<float>& grad_y) {
  const int64_t n_ = c.in[0], cin = c.cin(), h = c.in[2], wd = c.in[3], k = c.kernel;
  const int64_t cout = c.cout(), groups = c.group_count(), ho = c.ho(), wo = c.wo();
  const int64_t cin_g = cin / groups, cout_g = cout / groups, s = c.stride;
  const int64_t pt = c.pad_top(), pl = c.pad_left();
  NaiveConv r{Naive(n_ * cout * ho * wo), Naive(x.size()), Naive(w.size()), Naive(b.size())};
  for (int64_t n = 0; n < n_; ++n)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          const size_t yi = static_cast<size_t>(((n * cout + co) * ho + oh) * wo + ow);
          const double dy = grad_y[yi];
          if (c.bias) {
            r.y.add(yi, b[co]);
            r.grad_b.add(co, dy);
          }
          for (int64_t ci = 0; ci < cin_g; ++ci)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const int64_t ih = oh * s - pt + kh, iw = ow * s - pl + kw;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const int64_t c_in = co / cout_g * cin_g + ci;
                const size_t xi = static_cast<size_t>(((n * cin + c_in) * h + ih) * wd + iw);
                const size_t wi = static_cast<size_t>(((co * cin_g + ci) * k + kh) * k + kw);
                r.y.add(yi, double(w[wi]) * x[xi]);
                r.grad_x.add(xi, double(w[wi]) * dy);
                r.grad_w.add(wi, double(x[xi]) * dy);
              }
        }
  return r;
}

// The worst |actual - expected| relative to the float32 rounding allowance of each element.
void expect_close(const std::vector<float>& actual, const Naive& expected, const std::string& what,
                  const std::string& description) {
  ASSERT_EQ(actual.size(), expected.value.size()) << what << " " << description;
  double max_abs_err = 0;
  size_t worst = 0;
  bool ok = true;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double err = std::abs(actual[i] - expected.value[i]);
    if (err > 1e-5 * expected.scale[i] + 1e-6) ok = false;
    if (err > max_abs_err) {
      max_abs_err = err;
      worst = i;
    }
  }
  EXPECT_TRUE(ok) << what << " " << description << " max_abs_err=" << max_abs_err << " at ["
                  << worst << "]: got " << actual[worst] << " want " << expected.value[worst];
}

std::vector<ConvCase> awkward_cases() {
  std::vector<ConvCase> cases;
  for (int64_t c : {1, 3, 7, 17}) {
    for (Shape hw : {Shape{5, 7}, Shape{9, 9}, Shape{1, 2}}) {
      const Shape in{2, c, hw[0], hw[1]};
      cases.push_back({.in = in, .out = 5, .kernel = 3});
      cases.push_back({.in = in, .out = 4, .kernel = 3, .stride = 2});
      cases.push_back({.in = in, .out = 3, .kernel = 3, .stride = 2, .pad = 0, .bias = false});
      cases.push_back({.in = in, .kernel = 3, .depthwise = true});
      cases.push_back({.in = in, .kernel = 3, .stride = 2, .depthwise = true});
      cases.push_back({.in = in, .out = c, .kernel = 3, .pad = 2, .groups = c});
      cases.push_back({.in = in, .out = c + 2, .kernel = 1});
      cases.push_back({.in = in, .out = 6, .kernel = 1, .stride = 2});
      cases.push_back({.in = in, .kernel = 1, .depthwise = true, .bias = false});
    }
  }
  // Drop windows larger than their padded input (the 1x2 planes); those are error cases.
  std::erase_if(cases, [](const ConvCase& c) {
    return c.in[2] + 2 * c.padding() < c.kernel || c.in[3] + 2 * c.padding() < c.kernel;
  });
  // Grouped but not depthwise, with 8 channels per group (the channels-last weight gradient).
  cases.push_back({.in = {2, 16, 6, 5}, .out = 6, .kernel = 3, .groups = 2});
  cases.push_back({.in = {1, 6, 7, 7}, .out = 9, .kernel = 3, .stride = 2, .groups = 3});
  cases.push_back({.in = {1, 16, 3, 3}, .out = 4, .kernel = 1, .groups = 4});
  // Planes of 64 or more positions take the row-per-plane pointwise path, smaller ones the
  // batched one; these straddle it.
  cases.push_back({.in = {3, 9, 8, 8}, .out = 10, .kernel = 1});
  cases.push_back({.in = {3, 9, 7, 9}, .out = 10, .kernel = 1});
  return cases;
}

TEST(Conv2d, ForwardHandComputedStride2Pad1) {
  // x = 1..9 in a 3x3 plane, zero-padded to 5x5; output (oh, ow) reads padded rows and
  // columns 2*oh..2*oh+2, 2*ow..2*ow+2.
  OpHarness h("conv2d", ConvCase{.in = {1, 1, 3, 3}, .out = 1, .kernel = 3, .stride = 2}.attrs(),
              {{1, 1, 3, 3}});
  h.inputs[0] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  h.params[0] = {1, 0, 2, 0, 1, 0, -1, 0, 1};
  h.params[1] = {0.5f};
  h.forward();
  // (0,0): 1*1 + 1*5 = 6;  (0,1): 1*3 - 1*5 = -2;  (1,0): 2*5 + 1*7 = 17;  (1,1): 1*5 + 1*9 = 14.
  EXPECT_EQ(h.outputs[0], (std::vector<float>{6.5f, -1.5f, 17.5f, 14.5f}));
}

TEST(Conv2d, ForwardHandComputedTwoChannels2x2Kernel) {
  const ConvCase c{.in = {1, 2, 2, 3}, .out = 1, .kernel = 2, .pad = 0, .bias = false};
  OpHarness h("conv2d", c.attrs(), {c.in});
  h.inputs[0] = {1, 2, 3, 4, 5, 6,   // channel 0
                 0, 1, 0, 2, 0, 2};  // channel 1
  h.params[0] = {1, -1, 0, 2,        // filter over channel 0
                 3, 0,  0, 1};       // filter over channel 1
  h.forward();
  // (0,0): (1 - 2 + 10) + (0 + 0) = 9;  (0,1): (2 - 3 + 12) + (3 + 2) = 16.
  EXPECT_EQ(h.outputs[0], (std::vector<float>{9, 16}));
}

TEST(Conv2d, ForwardHandComputedDepthwise) {
  const ConvCase c{.in = {1, 2, 2, 2}, .kernel = 3, .depthwise = true, .bias = false};
  OpHarness h("conv2d", c.attrs(), {c.in});
  h.inputs[0] = {1, 2, 3, 4,                  // channel 0
                 1, 0, 0, 0};                 // channel 1: a single impulse at (0,0)
  h.params[0] = {1, 1, 1, 1, 1, 1, 1, 1, 1,   // channel 0: box filter
                 1, 2, 3, 4, 5, 6, 7, 8, 9};  // channel 1
  h.forward();
  // Channel 0: every padded 3x3 window covers the whole 2x2 plane: 10. Channel 1: output
  // (oh, ow) sees the impulse through tap (1-oh, 1-ow): 5, 4, 2, 1.
  EXPECT_EQ(h.outputs[0], (std::vector<float>{10, 10, 10, 10, 5, 4, 2, 1}));
}

TEST(Conv2d, ForwardHandComputedPointwise) {
  const ConvCase c{.in = {1, 2, 1, 2}, .out = 3, .kernel = 1};
  OpHarness h("conv2d", c.attrs(), {c.in});
  h.inputs[0] = {1, 2, 3, 4};
  h.params[0] = {1, 0, 0, 1, 1, -1};
  h.params[1] = {0, 10, 0};
  h.forward();
  EXPECT_EQ(h.outputs[0], (std::vector<float>{1, 2, 13, 14, -2, -2}));
}

TEST(Conv2d, InferShapesParamsAndMacs) {
  const ConvCase c{.in = {2, 6, 9, 8}, .out = 10, .kernel = 3, .stride = 2, .groups = 2};
  auto op = create_op("conv2d", c.attrs());
  const Shape in[] = {c.in};
  const Inferred inf = op->infer(in);
  EXPECT_EQ(inf.outputs, (std::vector<Shape>{{2, 10, 5, 4}}));
  ASSERT_EQ(inf.params.size(), 2u);
  EXPECT_EQ(inf.params[0].name, "weight");
  EXPECT_EQ(inf.params[0].shape, (Shape{10, 3, 3, 3}));
  EXPECT_EQ(inf.params[0].init, ParamInit::kHeNormal);
  EXPECT_EQ(inf.params[0].fan_in, 27);
  EXPECT_EQ(inf.params[1].name, "bias");
  EXPECT_EQ(inf.params[1].shape, (Shape{10}));
  EXPECT_EQ(inf.params[1].init, ParamInit::kZeros);
  EXPECT_EQ(inf.macs_per_sample, 10 * 5 * 4 * 3 * 9);

  const ConvCase dw{.in = {1, 32, 16, 16}, .kernel = 3, .depthwise = true, .bias = false};
  const Shape dw_in[] = {dw.in};
  const Inferred dw_inf = create_op("conv2d", dw.attrs())->infer(dw_in);
  EXPECT_EQ(dw_inf.outputs, (std::vector<Shape>{{1, 32, 16, 16}}));
  ASSERT_EQ(dw_inf.params.size(), 1u);
  EXPECT_EQ(dw_inf.params[0].shape, (Shape{32, 1, 3, 3}));
  EXPECT_EQ(dw_inf.params[0].fan_in, 9);
}

// The forward of every case against the naive convolution, inputs and params drawn in turn
// from one generator seeded with `seed`.
void expect_forward_matches_naive(const std::vector<ConvCase>& cases, uint32_t seed) {
  std::mt19937 rng(seed);
  for (const ConvCase& c : cases) {
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    h.forward();
    const std::vector<float> no_bias;
    const NaiveConv ref = naive_conv2d(c, h.inputs[0], h.params[0], c.bias ? h.params[1] : no_bias,
                                       h.grad_outputs[0]);
    expect_close(h.outputs[0], ref.y, "output", c.describe());
  }
}

// The backward of every case, with random output gradients, against the naive convolution.
void expect_backward_matches_naive(const std::vector<ConvCase>& cases, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const ConvCase& c : cases) {
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    for (float& v : h.grad_outputs[0]) v = dist(rng);
    h.forward();
    h.backward();
    const std::vector<float> no_bias;
    const NaiveConv ref = naive_conv2d(c, h.inputs[0], h.params[0], c.bias ? h.params[1] : no_bias,
                                       h.grad_outputs[0]);
    expect_close(h.grad_inputs[0], ref.grad_x, "grad input", c.describe());
    expect_close(h.grad_params[0], ref.grad_w, "grad weight", c.describe());
    if (c.bias) expect_close(h.grad_params[1], ref.grad_b, "grad bias", c.describe());
  }
}

TEST(Conv2d, ForwardMatchesNaiveOnAwkwardShapes) {
  expect_forward_matches_naive(awkward_cases(), 11);
}

TEST(Conv2d, BackwardMatchesNaiveOnAwkwardShapes) {
  expect_backward_matches_naive(awkward_cases(), 12);
}

TEST(Conv2d, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(13);
  const ConvCase cases[] = {
      {.in = {1, 3, 5, 5}, .out = 4, .kernel = 3, .stride = 2},
      {.in = {2, 4, 5, 6}, .kernel = 3, .depthwise = true},
      {.in = {2, 5, 7, 5}, .kernel = 3, .stride = 2, .depthwise = true, .bias = false},
      {.in = {1, 5, 4, 3}, .out = 3, .kernel = 1},
      {.in = {1, 9, 3, 5}, .out = 2, .kernel = 3},
      {.in = {1, 4, 7, 5}, .out = 6, .kernel = 3, .stride = 2, .pad = 0, .groups = 2},
      {.in = {1, 16, 3, 4}, .out = 4, .kernel = 3, .groups = 2},
  };
  for (const ConvCase& c : cases) {
    OpHarness h("conv2d", c.attrs(), {c.in});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << c.describe() << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
  }
}

// The engine relies on backward adding into the gradient buffers and skipping null ones.
TEST(Conv2d, BackwardAccumulatesAndSkipsNullGradients) {
  const ConvCase cases[] = {
      {.in = {2, 9, 6, 5}, .out = 4, .kernel = 3, .stride = 2},
      {.in = {2, 4, 5, 5}, .kernel = 3, .depthwise = true},
      {.in = {2, 9, 3, 3}, .out = 5, .kernel = 1},  // pointwise, small planes
      {.in = {1, 4, 9, 9}, .out = 3, .kernel = 1},  // pointwise, large planes
  };
  std::mt19937 rng(14);
  for (const ConvCase& c : cases) {
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    for (float& v : h.grad_outputs[0]) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    h.forward();
    h.backward();

    const Shape weight_shape = h.inferred.params[0].shape, bias_shape = h.inferred.params[1].shape;
    const Shape out_shape = h.inferred.outputs[0];
    std::vector<float> grad_w(h.grad_params[0].size(), 1.0f), grad_b(h.grad_params[1].size(), 2.0f);
    const Tensor inputs[] = {{h.inputs[0].data(), c.in}};
    const Tensor params[] = {{h.params[0].data(), weight_shape}, {h.params[1].data(), bias_shape}};
    const Tensor outputs[] = {{h.outputs[0].data(), out_shape}};
    const Tensor grad_outputs[] = {{h.grad_outputs[0].data(), out_shape}};
    const Tensor grad_inputs[] = {{nullptr, c.in}};
    const Tensor grad_params[] = {{grad_w.data(), weight_shape}, {grad_b.data(), bias_shape}};
    h.op->backward({inputs, params, outputs, grad_outputs, grad_inputs, grad_params});
    for (size_t i = 0; i < grad_w.size(); ++i)
      ASSERT_NEAR(grad_w[i], 1.0f + h.grad_params[0][i], 1e-5)
          << c.describe() << " weight [" << i << "]";
    for (size_t i = 0; i < grad_b.size(); ++i)
      ASSERT_NEAR(grad_b[i], 2.0f + h.grad_params[1][i], 1e-5)
          << c.describe() << " bias [" << i << "]";

    const Tensor no_params[] = {{nullptr, weight_shape}, {nullptr, bias_shape}};
    std::vector<float> grad_x(h.grad_inputs[0].size(), -1.0f);
    const Tensor grad_x_only[] = {{grad_x.data(), c.in}};
    h.op->backward({inputs, params, outputs, grad_outputs, grad_x_only, no_params});
    for (size_t i = 0; i < grad_x.size(); ++i)
      ASSERT_NEAR(grad_x[i], -1.0f + h.grad_inputs[0][i], 1e-5)
          << c.describe() << " input [" << i << "]";
  }
}

// The relu and relu6 ops' definitions, applied to a naive output; returns how many values relu6
// clipped at 6, so that a test can check the inputs reached the upper kink.
int activate(Naive& y, const std::string& activation) {
  int clipped = 0;
  for (double& v : y.value) {
    if (activation == "none") continue;
    v = std::max(v, 0.0);
    if (activation == "relu6" && v > 6.0) {
      v = 6.0;
      ++clipped;
    }
  }
  return clipped;
}

TEST(Conv2d, ForwardActivationMatchesNaiveOnAwkwardShapes) {
  std::mt19937 rng(15);
  for (const char* activation : {"relu", "relu6"}) {
    int clipped = 0;
    for (ConvCase c : awkward_cases()) {
      c.activation = activation;
      OpHarness h("conv2d", c.attrs(), {c.in});
      h.randomize(rng, -2.0f, 2.0f);  // sums beyond 6, for relu6's upper kink
      h.forward(Mode::kEval);
      const std::vector<float> no_bias;
      NaiveConv ref = naive_conv2d(c, h.inputs[0], h.params[0], c.bias ? h.params[1] : no_bias,
                                   h.grad_outputs[0]);
      clipped += activate(ref.y, activation);
      expect_close(h.outputs[0], ref.y, "output", c.describe());
    }
    if (std::string(activation) == "relu6") {
      EXPECT_GT(clipped, 100);
    }
  }
}

TEST(Conv2d, ActivationIsForwardOnly) {
  ConvCase c{.in = {1, 2, 4, 4}, .out = 3, .kernel = 3, .activation = "relu"};
  OpHarness h("conv2d", c.attrs(), {c.in});
  std::mt19937 rng(16);
  h.randomize(rng);
  h.forward(Mode::kEval);
  try {
    h.backward();
    ADD_FAILURE() << "backward with activation=relu did not throw";
  } catch (const OpError& e) {
    EXPECT_NE(std::string(e.what()).find("activation='relu'"), std::string::npos) << e.what();
  }
  c.activation = "gelu";
  EXPECT_THROW(OpHarness("conv2d", c.attrs(), {c.in}), OpError);
}

// TF SAME padding on odd and even sizes, stride 1 and 2, odd and even kernels (an even kernel
// pads asymmetrically even at stride 1), through every kernel path: general, depthwise,
// grouped, pointwise, strided 1x1 and both weight-gradient layouts.
std::vector<ConvCase> same_tf_cases() {
  std::vector<ConvCase> cases;
  for (Shape hw : {Shape{8, 8}, Shape{7, 7}, Shape{6, 9}, Shape{9, 4}, Shape{1, 2}, Shape{2, 3}}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t c : {3, 9}) {
        const Shape in{2, c, hw[0], hw[1]};
        cases.push_back({.in = in, .out = 5, .kernel = 3, .stride = stride});
        cases.push_back({.in = in, .out = 4, .kernel = 2, .stride = stride, .bias = false});
        cases.push_back({.in = in, .out = 3, .kernel = 5, .stride = stride});
        cases.push_back({.in = in, .kernel = 3, .stride = stride, .depthwise = true});
        cases.push_back({.in = in, .kernel = 4, .stride = stride, .depthwise = true});
        cases.push_back({.in = in, .out = 2 * c, .kernel = 3, .stride = stride, .groups = c});
        cases.push_back({.in = in, .out = 6, .kernel = 1, .stride = stride});
      }
    }
  }
  cases.push_back({.in = {2, 16, 7, 8}, .out = 6, .kernel = 3, .stride = 2, .groups = 2});
  cases.push_back({.in = {1, 12, 8, 7}, .out = 8, .kernel = 3, .stride = 2});
  for (ConvCase& c : cases) c.pad_mode = "same_tf";
  return cases;
}

TEST(Conv2d, SameTfHandComputedStride2EvenInput) {
  // 3x3 stride 2 on 4x4: TF SAME pads 0 before and 1 after (not 1 and 1), so output (0,0)
  // sums input rows and columns 0..2 and output (1,1) rows and columns 2..3 plus padding.
  ConvCase c{.in = {1, 1, 4, 4}, .out = 1, .kernel = 3, .stride = 2, .bias = false};
  c.pad_mode = "same_tf";
  OpHarness h("conv2d", c.attrs(), {c.in});
  for (int i = 0; i < 16; ++i) h.inputs[0][i] = static_cast<float>(i + 1);
  std::fill(h.params[0].begin(), h.params[0].end(), 1.0f);
  h.forward();
  // (0,0): 1+2+3+5+6+7+9+10+11 = 54; (0,1): 3+4+7+8+11+12 = 45; (1,0): 9+10+11+13+14+15 = 72;
  // (1,1): 11+12+15+16 = 54. Symmetric padding 1 would give 14 at (0,0).
  EXPECT_EQ(h.outputs[0], (std::vector<float>{54, 45, 72, 54}));
}

TEST(Conv2d, SameTfInferShapes) {
  for (const ConvCase& c : same_tf_cases()) {
    const Shape in[] = {c.in};
    const Inferred inf = create_op("conv2d", c.attrs())->infer(in);
    // SAME keeps ceil(size / stride) whatever the kernel.
    EXPECT_EQ(inf.outputs[0], (Shape{c.in[0], c.cout(), (c.in[2] + c.stride - 1) / c.stride,
                                     (c.in[3] + c.stride - 1) / c.stride}))
        << c.describe();
  }
  // Explicit padding is the default: the same 3x3 stride-2 node on 4x4 with pad=-1.
  const ConvCase plain{.in = {1, 1, 4, 4}, .out = 1, .kernel = 3, .stride = 2};
  Attrs defaults;
  defaults.set("out", int64_t{1});
  defaults.set("kernel", int64_t{3});
  EXPECT_EQ(complete_attrs(conv2d_schema(), defaults).get_string("pad_mode"), "explicit");
  const Shape in[] = {plain.in};
  EXPECT_EQ(create_op("conv2d", plain.attrs())->infer(in).outputs[0], (Shape{1, 1, 2, 2}));
}

TEST(Conv2d, SameTfResolvedPadding) {
  // 224 / 2: total max(111*2 + 3 - 224, 0) = 1 -> 0 before, 1 after; 7 / 2: total 2 -> 1, 1;
  // kernel 2 stride 1: total 1 -> 0, 1; 1x1 stride 2 on 7: total 0.
  const ConvPadding a = resolve_conv_padding(ConvPadMode::kSameTf, -1, 3, 2, 224, 7);
  EXPECT_EQ(std::vector<int64_t>({a.top, a.left, a.bottom, a.right}),
            (std::vector<int64_t>{0, 1, 1, 1}));
  const ConvPadding b = resolve_conv_padding(ConvPadMode::kSameTf, -1, 2, 1, 5, 6);
  EXPECT_EQ(std::vector<int64_t>({b.top, b.left, b.bottom, b.right}),
            (std::vector<int64_t>{0, 0, 1, 1}));
  const ConvPadding c = resolve_conv_padding(ConvPadMode::kSameTf, -1, 1, 2, 7, 8);
  EXPECT_EQ(std::vector<int64_t>({c.top, c.left, c.bottom, c.right}),
            (std::vector<int64_t>{0, 0, 0, 0}));
  const ConvPadding d = resolve_conv_padding(ConvPadMode::kExplicit, -1, 5, 2, 7, 8);
  EXPECT_EQ(std::vector<int64_t>({d.top, d.left, d.bottom, d.right}),
            (std::vector<int64_t>{2, 2, 2, 2}));
}

TEST(Conv2d, SameTfForwardMatchesNaive) { expect_forward_matches_naive(same_tf_cases(), 21); }

TEST(Conv2d, SameTfBackwardMatchesNaive) { expect_backward_matches_naive(same_tf_cases(), 22); }

TEST(Conv2d, SameTfBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(23);
  ConvCase cases[] = {
      {.in = {1, 3, 6, 6}, .out = 4, .kernel = 3, .stride = 2},
      {.in = {1, 3, 7, 5}, .out = 4, .kernel = 3, .stride = 2},
      {.in = {2, 4, 6, 7}, .kernel = 3, .stride = 2, .depthwise = true},
      {.in = {2, 5, 5, 5}, .kernel = 3, .stride = 1, .depthwise = true, .bias = false},
      {.in = {1, 9, 4, 6}, .out = 3, .kernel = 2, .stride = 1},
      {.in = {1, 16, 6, 5}, .out = 4, .kernel = 3, .stride = 2, .groups = 2},
      {.in = {1, 5, 7, 8}, .out = 3, .kernel = 1, .stride = 2},
  };
  for (ConvCase& c : cases) {
    c.pad_mode = "same_tf";
    OpHarness h("conv2d", c.attrs(), {c.in});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << c.describe() << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
  }
}

TEST(Conv2d, SameTfWithActivationMatchesNaive) {
  std::mt19937 rng(24);
  int clipped = 0;
  for (ConvCase c : same_tf_cases()) {
    c.activation = "relu6";
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng, -2.0f, 2.0f);
    h.forward(Mode::kEval);
    const std::vector<float> no_bias;
    NaiveConv ref = naive_conv2d(c, h.inputs[0], h.params[0], c.bias ? h.params[1] : no_bias,
                                 h.grad_outputs[0]);
    clipped += activate(ref.y, c.activation);
    expect_close(h.outputs[0], ref.y, "output", c.describe());
  }
  EXPECT_GT(clipped, 10);
}

TEST(Conv2d, SameTfRejectsExplicitPadAndUnknownModes) {
  ConvCase c{.in = {1, 2, 6, 6}, .out = 2, .kernel = 3, .stride = 2, .pad = 1};
  c.pad_mode = "same_tf";
  try {
    OpHarness h("conv2d", c.attrs(), {c.in});
    ADD_FAILURE() << c.describe() << " did not throw";
  } catch (const OpError& e) {
    EXPECT_NE(std::string(e.what()).find("pad=1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("same_tf"), std::string::npos) << e.what();
  }
  c.pad = -1;
  c.pad_mode = "same";
  try {
    OpHarness h("conv2d", c.attrs(), {c.in});
    ADD_FAILURE() << c.describe() << " did not throw";
  } catch (const OpError& e) {
    EXPECT_NE(std::string(e.what()).find("explicit, same_tf"), std::string::npos) << e.what();
  }
}

void expect_shape_error(const ConvCase& c, const std::string& fragment) {
  try {
    OpHarness h("conv2d", c.attrs(), {c.in});
    ADD_FAILURE() << c.describe() << " did not throw";
  } catch (const OpError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << c.describe() << ": message '" << e.what() << "' does not name " << fragment;
  }
}

TEST(Conv2d, ShapeErrorsThrowOpErrorNamingTheShape) {
  expect_shape_error({.in = {1, 3, 5}, .out = 4, .kernel = 3}, "[1,3,5]");
  expect_shape_error({.in = {1, 6, 5, 5}, .out = 8, .kernel = 3, .groups = 4}, "[1,6,5,5]");
  expect_shape_error({.in = {1, 8, 5, 5}, .out = 6, .kernel = 3, .groups = 4}, "out=6");
  expect_shape_error({.in = {1, 1, 2, 2}, .out = 1, .kernel = 5, .pad = 0}, "[1,1,2,2]");
  expect_shape_error({.in = {1, 4, 5, 5}, .out = 8, .kernel = 3, .depthwise = true}, "[1,4,5,5]");
  expect_shape_error({.in = {1, 4, 5, 5}, .kernel = 3, .groups = 2, .depthwise = true}, "groups=2");
}

TEST(Conv2d, BadAttributesThrowOpError) {
  expect_shape_error({.in = {1, 4, 5, 5}, .kernel = 3}, "'out'");
  expect_shape_error({.in = {1, 4, 5, 5}, .out = 2, .kernel = 0}, "kernel=0");
  expect_shape_error({.in = {1, 4, 5, 5}, .out = 2, .kernel = 3, .stride = 0}, "stride=0");
  expect_shape_error({.in = {1, 4, 5, 5}, .out = 2, .kernel = 3, .groups = 0}, "groups=0");
  Attrs no_kernel;
  no_kernel.set("out", int64_t{4});
  EXPECT_THROW(create_op("conv2d", no_kernel), OpError);
}

}  // namespace
}  // namespace emt::test
