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

struct ConvTCase {
  Shape in;
  int64_t out = 1, kernel = 3, stride = 1, pad = -1, output_pad = 0;
  bool bias = true;
  std::string activation = "none";

  Attrs attrs() const {
    Attrs a;
    a.set("out", out);
    a.set("kernel", kernel);
    a.set("stride", stride);
    a.set("pad", pad);
    a.set("output_pad", output_pad);
    a.set("bias", bias);
    a.set("activation", activation);
    return a;
  }
  std::string describe() const { return describe_case("conv_transpose2d", attrs(), {in}); }

  // Resolved independently of the op, from the ONNX ConvTranspose definition.
  int64_t padding() const { return pad < 0 ? (kernel - 1) / 2 : pad; }
  int64_t ho() const { return (in[2] - 1) * stride - 2 * padding() + kernel + output_pad; }
  int64_t wo() const { return (in[3] - 1) * stride - 2 * padding() + kernel + output_pad; }
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

struct NaiveConvT {
  Naive y, grad_x, grad_w, grad_b;
};

// The scatter definition in double: every input element x[n,ci,ih,iw] adds
// x * w[ci,co,kh,kw] to y[n,co,ih*s-p+kh,iw*s-p+kw] where that lies inside the output; plus
// b[co] everywhere. The gradients of sum(y * grad_y) come from the same loop nest.
NaiveConvT naive_conv_transpose2d(const ConvTCase& c, const std::vector<float>& x,
                                  const std::vector<float>& w, const std::vector<float>& b,
                                  const std::vector<float>& grad_y) {
  const int64_t n_ = c.in[0], cin = c.in[1], h = c.in[2], wd = c.in[3], k = c.kernel;
  const int64_t cout = c.out, ho = c.ho(), wo = c.wo(), s = c.stride, p = c.padding();
  NaiveConvT r{Naive(n_ * cout * ho * wo), Naive(x.size()), Naive(w.size()), Naive(b.size())};
  if (c.bias)
    for (int64_t n = 0; n < n_; ++n)
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t i = 0; i < ho * wo; ++i) {
          const size_t yi = static_cast<size_t>((n * cout + co) * ho * wo + i);
          r.y.add(yi, b[co]);
          r.grad_b.add(co, grad_y[yi]);
        }
  for (int64_t n = 0; n < n_; ++n)
    for (int64_t ci = 0; ci < cin; ++ci)
      for (int64_t ih = 0; ih < h; ++ih)
        for (int64_t iw = 0; iw < wd; ++iw)
          for (int64_t co = 0; co < cout; ++co)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const int64_t oh = ih * s - p + kh, ow = iw * s - p + kw;
                if (oh < 0 || oh >= ho || ow < 0 || ow >= wo) continue;
                const size_t xi = static_cast<size_t>(((n * cin + ci) * h + ih) * wd + iw);
                const size_t wi = static_cast<size_t>(((ci * cout + co) * k + kh) * k + kw);
                const size_t yi = static_cast<size_t>(((n * cout + co) * ho + oh) * wo + ow);
                r.y.add(yi, double(x[xi]) * w[wi]);
                r.grad_x.add(xi, double(w[wi]) * grad_y[yi]);
                r.grad_w.add(wi, double(x[xi]) * grad_y[yi]);
              }
  return r;
}

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

std::vector<ConvTCase> awkward_cases() {
  std::vector<ConvTCase> cases;
  for (int64_t c : {1, 3, 7, 17}) {
    for (Shape hw : {Shape{5, 7}, Shape{3, 3}, Shape{1, 2}}) {
      const Shape in{2, c, hw[0], hw[1]};
      cases.push_back({.in = in, .out = 5, .kernel = 3, .stride = 2, .pad = 1, .output_pad = 1});
      cases.push_back({.in = in, .out = c, .kernel = 3, .stride = 2, .pad = 1});
      cases.push_back({.in = in, .out = 3, .kernel = 3});
      cases.push_back({.in = in, .out = 9, .kernel = 3, .stride = 2, .pad = 0, .output_pad = 1});
      cases.push_back({.in = in, .out = c + 1, .kernel = 1});
      cases.push_back({.in = in, .out = 2, .kernel = 1, .stride = 2, .output_pad = 1});
      cases.push_back({.in = in, .out = 4, .kernel = 2, .stride = 2, .pad = 0, .bias = false});
      cases.push_back({.in = in, .out = 2, .kernel = 4, .stride = 2, .pad = 1});
    }
  }
  // Output planes of 64 or more positions take conv2d's row-per-plane pointwise path.
  cases.push_back({.in = {2, 5, 9, 9}, .out = 6, .kernel = 1});
  return cases;
}

TEST(ConvTranspose2d, ForwardHandComputedEmtNetUpsampling) {
  // kernel 3, stride 2, pad 1, output_pad 1 on a 2x2 plane: x[ih][iw] * w[kh][kw] lands on
  // y[2*ih - 1 + kh][2*iw - 1 + kw] when that is inside the 4x4 output.
  const ConvTCase c{.in = {1, 1, 2, 2}, .kernel = 3, .stride = 2, .pad = 1, .output_pad = 1};
  OpHarness h("conv_transpose2d", c.attrs(), {c.in});
  ASSERT_EQ(h.inferred.outputs[0], (Shape{1, 1, 4, 4}));
  h.inputs[0] = {1, 2, 3, 4};
  h.params[0] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  h.params[1] = {0.5f};
  h.forward();
  // Row 0: x00*w11; x00*w12 + x01*w10; x01*w11; x01*w12.
  // Row 1: x00*w21 + x10*w01; x00*w22 + x01*w20 + x10*w02 + x11*w00; x01*w21 + x11*w01;
  //        x01*w22 + x11*w02.
  // Row 2: x10*w11; x10*w12 + x11*w10; x11*w11; x11*w12.
  // Row 3: x10*w21; x10*w22 + x11*w20; x11*w21; x11*w22.
  const std::vector<float> expected = {5,  14, 10, 12,  //
                                       14, 36, 24, 30,  //
                                       15, 34, 20, 24,  //
                                       24, 55, 32, 36};
  std::vector<float> with_bias;
  for (float v : expected) with_bias.push_back(v + 0.5f);
  EXPECT_EQ(h.outputs[0], with_bias);
}

TEST(ConvTranspose2d, ForwardHandComputedTwoChannelsStride1) {
  const ConvTCase c{.in = {1, 2, 1, 2}, .out = 1, .kernel = 2, .pad = 0};
  OpHarness h("conv_transpose2d", c.attrs(), {c.in});
  ASSERT_EQ(h.inferred.outputs[0], (Shape{1, 1, 2, 3}));
  h.inputs[0] = {1, 2,         // channel 0
                 3, 0};        // channel 1
  h.params[0] = {1, 0, 0, 1,   // channel 0 -> output
                 2, 2, 2, 2};  // channel 1 -> output
  h.params[1] = {1};
  h.forward();
  // Channel 0 stamps the diagonal filter at columns 0 and 1 (scaled 1 and 2); channel 1 stamps
  // a 2x2 block of 6 at column 0; then + 1.
  EXPECT_EQ(h.outputs[0], (std::vector<float>{8, 9, 1, 7, 8, 3}));
}

TEST(ConvTranspose2d, InferShapesParamsAndMacs) {
  const ConvTCase c{.in = {2, 8, 5, 7}, .out = 4, .kernel = 3, .stride = 2, .output_pad = 1};
  const Shape in[] = {c.in};
  const Inferred inf = create_op("conv_transpose2d", c.attrs())->infer(in);
  EXPECT_EQ(inf.outputs, (std::vector<Shape>{{2, 4, 10, 14}}));  // doubled
  ASSERT_EQ(inf.params.size(), 2u);
  EXPECT_EQ(inf.params[0].name, "weight");
  EXPECT_EQ(inf.params[0].shape, (Shape{8, 4, 3, 3}));
  EXPECT_EQ(inf.params[0].init, ParamInit::kHeNormal);
  EXPECT_EQ(inf.params[0].fan_in, 8 * 9 / 4);
  EXPECT_EQ(inf.params[1].name, "bias");
  EXPECT_EQ(inf.params[1].shape, (Shape{4}));
  EXPECT_EQ(inf.macs_per_sample, 8 * 5 * 7 * 4 * 9);
}

TEST(ConvTranspose2d, ForwardMatchesNaiveOnAwkwardShapes) {
  std::mt19937 rng(21);
  for (const ConvTCase& c : awkward_cases()) {
    OpHarness h("conv_transpose2d", c.attrs(), {c.in});
    ASSERT_EQ(h.inferred.outputs[0], (Shape{c.in[0], c.out, c.ho(), c.wo()})) << c.describe();
    h.randomize(rng);
    h.forward();
    const std::vector<float> no_bias;
    const NaiveConvT ref = naive_conv_transpose2d(
        c, h.inputs[0], h.params[0], c.bias ? h.params[1] : no_bias, h.grad_outputs[0]);
    expect_close(h.outputs[0], ref.y, "output", c.describe());
  }
}

TEST(ConvTranspose2d, BackwardMatchesNaiveOnAwkwardShapes) {
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const ConvTCase& c : awkward_cases()) {
    OpHarness h("conv_transpose2d", c.attrs(), {c.in});
    h.randomize(rng);
    for (float& v : h.grad_outputs[0]) v = dist(rng);
    h.forward();
    h.backward();
    const std::vector<float> no_bias;
    const NaiveConvT ref = naive_conv_transpose2d(
        c, h.inputs[0], h.params[0], c.bias ? h.params[1] : no_bias, h.grad_outputs[0]);
    expect_close(h.grad_inputs[0], ref.grad_x, "grad input", c.describe());
    expect_close(h.grad_params[0], ref.grad_w, "grad weight", c.describe());
    if (c.bias) expect_close(h.grad_params[1], ref.grad_b, "grad bias", c.describe());
  }
}

TEST(ConvTranspose2d, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(23);
  const ConvTCase cases[] = {
      {.in = {1, 3, 3, 3}, .out = 2, .kernel = 3, .stride = 2, .pad = 1, .output_pad = 1},
      {.in = {2, 2, 4, 3}, .out = 3, .kernel = 3},
      {.in = {1, 3, 3, 2}, .out = 9, .kernel = 3, .stride = 2, .output_pad = 1},
      {.in = {1, 4, 3, 3}, .out = 5, .kernel = 1},
      {.in = {1, 3, 2, 3}, .out = 2, .kernel = 2, .stride = 2, .pad = 0, .bias = false},
      {.in = {1, 2, 3, 3}, .out = 2, .kernel = 4, .stride = 2, .pad = 1},
  };
  for (const ConvTCase& c : cases) {
    OpHarness h("conv_transpose2d", c.attrs(), {c.in});
    const GradCheckResult r = check_gradients(h, rng);
    EXPECT_TRUE(r.ok) << c.describe() << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
  }
}

TEST(ConvTranspose2d, BackwardAccumulatesAndSkipsNullGradients) {
  const ConvTCase cases[] = {
      {.in = {2, 3, 4, 5}, .out = 9, .kernel = 3, .stride = 2, .output_pad = 1},
      {.in = {2, 3, 3, 3}, .out = 4, .kernel = 1},  // pointwise, small planes
      {.in = {1, 4, 9, 9}, .out = 3, .kernel = 1},  // pointwise, large planes
  };
  std::mt19937 rng(24);
  for (const ConvTCase& c : cases) {
    OpHarness h("conv_transpose2d", c.attrs(), {c.in});
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

TEST(ConvTranspose2d, ForwardActivationMatchesNaiveOnAwkwardShapes) {
  std::mt19937 rng(25);
  for (const char* activation : {"relu", "relu6"}) {
    int clipped = 0;
    for (ConvTCase c : awkward_cases()) {
      c.activation = activation;
      OpHarness h("conv_transpose2d", c.attrs(), {c.in});
      h.randomize(rng, -2.0f, 2.0f);  // sums beyond 6, for relu6's upper kink
      h.forward(Mode::kEval);
      const std::vector<float> no_bias;
      NaiveConvT ref = naive_conv_transpose2d(c, h.inputs[0], h.params[0],
                                              c.bias ? h.params[1] : no_bias, h.grad_outputs[0]);
      // The relu and relu6 ops' definitions.
      for (double& v : ref.y.value) {
        v = std::max(v, 0.0);
        if (std::string(activation) == "relu6" && v > 6.0) {
          v = 6.0;
          ++clipped;
        }
      }
      expect_close(h.outputs[0], ref.y, "output", c.describe());
    }
    if (std::string(activation) == "relu6") {
      EXPECT_GT(clipped, 100);
    }
  }
}

TEST(ConvTranspose2d, ActivationIsForwardOnly) {
  ConvTCase c{.in = {1, 2, 3, 3}, .out = 3, .kernel = 3, .stride = 2, .activation = "relu6"};
  OpHarness h("conv_transpose2d", c.attrs(), {c.in});
  std::mt19937 rng(26);
  h.randomize(rng);
  h.forward(Mode::kEval);
  try {
    h.backward();
    ADD_FAILURE() << "backward with activation=relu6 did not throw";
  } catch (const OpError& e) {
    EXPECT_NE(std::string(e.what()).find("activation='relu6'"), std::string::npos) << e.what();
  }
  c.activation = "sigmoid";
  EXPECT_THROW(OpHarness("conv_transpose2d", c.attrs(), {c.in}), OpError);
}

void expect_error(const ConvTCase& c, const std::string& fragment) {
  try {
    OpHarness h("conv_transpose2d", c.attrs(), {c.in});
    ADD_FAILURE() << c.describe() << " did not throw";
  } catch (const OpError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << c.describe() << ": message '" << e.what() << "' does not name " << fragment;
  }
}

TEST(ConvTranspose2d, ShapeAndAttributeErrorsThrowOpError) {
  expect_error({.in = {1, 3, 5}, .out = 2, .kernel = 3}, "[1,3,5]");
  expect_error({.in = {1, 3, 1, 1}, .out = 2, .kernel = 1, .pad = 1}, "[1,3,1,1]");
  expect_error({.in = {1, 3, 4, 4}, .out = 2, .kernel = 3, .output_pad = 1}, "output_pad=1");
  expect_error({.in = {1, 3, 4, 4}, .out = 2, .kernel = 3, .stride = 2, .output_pad = 2},
               "output_pad=2");
  expect_error({.in = {1, 3, 4, 4}, .out = 0, .kernel = 3}, "out=0");
  expect_error({.in = {1, 3, 4, 4}, .out = 2, .kernel = 0}, "kernel=0");
  Attrs no_out;
  no_out.set("kernel", int64_t{3});
  EXPECT_THROW(create_op("conv_transpose2d", no_out), OpError);
}

}  // namespace
}  // namespace emt::test
