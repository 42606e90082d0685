#include "ops/conv2d/conv2d_one_output.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ops/core/parallel.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

// Both kernels sum the same float32 terms in different orders. With operands in [-1, 1] the
// longest sums here (weight gradient: n * ho * wo <= 3 * 5 * 150 terms) round differently by
// ~sqrt(terms) * 6e-8 * |partial sums|, around 1e-5, while a wrong index or a lost
// accumulation is off by O(1). 1e-4 relative to the magnitude (plus 1 for values that cancel
// to near 0) sits between the two, as in tests/onednn/variant_check.cpp.
constexpr float kTol = 1e-4f;

struct OneOutputCase {
  Shape in;
  int64_t kernel = 3, stride = 1, pad = 1;
  bool same_tf = false, bias = true;

  Attrs attrs() const {
    Attrs a;
    a.set("out", int64_t{1});
    a.set("kernel", kernel);
    a.set("stride", stride);
    if (!same_tf) a.set("pad", pad);  // same_tf derives it and rejects an explicit one
    a.set("pad_mode", std::string(same_tf ? "same_tf" : "explicit"));
    a.set("bias", bias);
    return a;
  }
  std::string describe() const { return describe_case("conv2d", attrs(), {in}); }

  ConvGeometry geometry() const {
    ConvGeometry g;
    g.n = in[0];
    g.cin = in[1];
    g.h = in[2];
    g.w = in[3];
    g.kernel = kernel;
    g.stride = stride;
    g.set_padding(resolve_conv_padding(same_tf ? ConvPadMode::kSameTf : ConvPadMode::kExplicit, pad,
                                       kernel, stride, g.h, g.w));
    g.ho = (g.h + g.pad_top + g.pad_bottom - kernel) / stride + 1;
    g.wo = (g.w + g.pad_left + g.pad_right - kernel) / stride + 1;
    return g;
  }
  bool valid() const {
    const ConvGeometry g = geometry();
    return g.h + g.pad_top + g.pad_bottom >= kernel && g.w + g.pad_left + g.pad_right >= kernel;
  }
};

// C, spatial sizes, kernels, strides and paddings crossed; batch drawn from rng. The 5x83 and
// 3x150 planes are wide enough for the vector strips (4 and 1 registers) plus a scalar tail.
std::vector<OneOutputCase> cases(std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> batch(1, 3);
  std::vector<OneOutputCase> out;
  for (int64_t c : {1, 3, 17, 32})
    for (Shape hw :
         {Shape{1, 1}, Shape{5, 5}, Shape{9, 9}, Shape{13, 17}, Shape{5, 83}, Shape{3, 150}})
      for (int64_t k : {1, 3, 5})
        for (int64_t s : {1, 2})
          for (int64_t pad : {0, 1, 2, -2}) {  // -2: TF SAME
            const OneOutputCase oc{.in = {batch(rng), c, hw[0], hw[1]},
                                   .kernel = k,
                                   .stride = s,
                                   .pad = pad < 0 ? 0 : pad,
                                   .same_tf = pad < 0,
                                   .bias = out.size() % 2 == 0};
            if (oc.valid()) out.push_back(oc);
          }
  return out;
}

void expect_close(const std::string& repro, const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size()) << repro << " " << what;
  float max_abs_err = 0;
  bool ok = true;
  for (size_t i = 0; i < got.size(); ++i) {
    const float err = std::abs(got[i] - want[i]);
    max_abs_err = std::max(max_abs_err, err);
    if (!(err <= kTol * (1 + std::abs(want[i])))) ok = false;  // NaN fails too
  }
  if (ok) return;
  char line[256];
  std::snprintf(line, sizeof line, "%s %s max_abs_err=%.2g tol=%.0e", repro.c_str(), what.c_str(),
                max_abs_err, kTol);
  ADD_FAILURE() << line;
}

std::vector<float> random_vector(std::mt19937& rng, size_t size) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(size);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(OneOutputConv, FitsOnlyOneOutputChannelUngrouped) {
  const ConvGeometry g = OneOutputCase{.in = {1, 4, 6, 6}}.geometry();
  EXPECT_TRUE(one_output_conv_fits(g));
  ConvGeometry two = g;
  two.cout = 2;
  EXPECT_FALSE(one_output_conv_fits(two));
  ConvGeometry grouped = g;
  grouped.groups = 2;
  EXPECT_FALSE(one_output_conv_fits(grouped));
  ConvGeometry wrong_size = g;
  wrong_size.wo = g.wo + 1;
  EXPECT_FALSE(one_output_conv_fits(wrong_size));
}

TEST(OneOutputConv, ForwardMatchesReference) {
  std::mt19937 rng(21);
  for (const OneOutputCase& c : cases(rng)) {
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    h.forward();
    const ConvGeometry g = c.geometry();
    ASSERT_TRUE(one_output_conv_fits(g)) << c.describe();
    std::vector<float> dst = random_vector(rng, h.outputs[0].size());  // must be overwritten
    one_output_conv_forward(g, h.inputs[0].data(), h.params[0].data(),
                            c.bias ? h.params[1].data() : nullptr, dst.data());
    expect_close(c.describe(), "output", dst, h.outputs[0]);
  }
}

// Gradients added into random buffers; each case also runs once with a subset of them null
// (cycling through all seven non-empty subsets), which must leave the others unchanged.
TEST(OneOutputConv, BackwardAccumulatesAndMatchesReference) {
  std::mt19937 rng(22);
  int subset = 0;
  for (OneOutputCase c : cases(rng)) {
    c.bias = true;  // the kernel always has a bias gradient to give
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    h.grad_outputs[0] = random_vector(rng, h.grad_outputs[0].size());
    h.forward();
    h.backward();
    const ConvGeometry g = c.geometry();
    for (const int wanted : {7, subset++ % 7 + 1}) {  // bits: src, weight, bias
      std::vector<float> ds = random_vector(rng, h.grad_inputs[0].size());
      std::vector<float> dw = random_vector(rng, h.grad_params[0].size());
      std::vector<float> db = random_vector(rng, 1);
      std::vector<float> want_ds = ds, want_dw = dw, want_db = db;
      if (wanted & 1)
        for (size_t i = 0; i < ds.size(); ++i) want_ds[i] += h.grad_inputs[0][i];
      if (wanted & 2)
        for (size_t i = 0; i < dw.size(); ++i) want_dw[i] += h.grad_params[0][i];
      if (wanted & 4) want_db[0] += h.grad_params[1][0];
      one_output_conv_backward(g, h.inputs[0].data(), h.params[0].data(), h.grad_outputs[0].data(),
                               wanted & 1 ? ds.data() : nullptr, wanted & 2 ? dw.data() : nullptr,
                               wanted & 4 ? db.data() : nullptr);
      const std::string repro = c.describe() + " grads=" + std::to_string(wanted);
      expect_close(repro, "grad input", ds, want_ds);
      expect_close(repro, "grad weight", dw, want_dw);
      expect_close(repro, "grad bias", db, want_db);
    }
  }
}

// Splits the range in two unequal halves run on two threads at once.
void two_thread_for(int64_t count, const RangeBody& body) {
  const int64_t split = count / 3;
  std::thread first([&] { body(0, split); });
  body(split, count);
  first.join();
}

struct Results {
  std::vector<float> dst, ds, dw, db;
  bool operator==(const Results&) const = default;
};

Results run_all(const ConvGeometry& g, const std::vector<float>& src,
                const std::vector<float>& weight, const std::vector<float>& diff_dst) {
  Results r{std::vector<float>(diff_dst.size()), std::vector<float>(src.size()),
            std::vector<float>(weight.size()), std::vector<float>(1)};
  const float bias = 0.25f;
  one_output_conv_forward(g, src.data(), weight.data(), &bias, r.dst.data());
  one_output_conv_backward(g, src.data(), weight.data(), diff_dst.data(), r.ds.data(), r.dw.data(),
                           r.db.data());
  return r;
}

TEST(OneOutputConv, ResultsDoNotDependOnThreadCount) {
  std::mt19937 rng(23);
  for (const OneOutputCase& c :
       {OneOutputCase{.in = {3, 17, 23, 70}}, OneOutputCase{.in = {2, 5, 19, 41}, .stride = 2},
        OneOutputCase{.in = {2, 3, 9, 20}, .kernel = 5, .same_tf = true}}) {
    const ConvGeometry g = c.geometry();
    const std::vector<float> src = random_vector(rng, g.n * g.cin * g.h * g.w);
    const std::vector<float> weight = random_vector(rng, g.cin * g.kernel * g.kernel);
    const std::vector<float> diff_dst = random_vector(rng, g.n * g.ho * g.wo);
    const Results serial = run_all(g, src, weight, diff_dst);
    set_parallel_for(two_thread_for);
    const Results threaded = run_all(g, src, weight, diff_dst);
    set_parallel_for(nullptr);
    EXPECT_TRUE(serial == threaded) << c.describe();
  }
}

// Processor time rather than wall time: the benchmark is single-threaded, and on a shared
// machine wall time mostly measures the other processes.
double milliseconds_since(std::clock_t start) {
  return 1000.0 * static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
}

// EMT-Net's mask logit, single-threaded, against the reference conv2d; prints timings only.
// Run with --gtest_also_run_disabled_tests --gtest_filter='*OneOutput*Benchmark*'.
TEST(OneOutputConv, DISABLED_BenchmarkMaskLogit) {
  const OneOutputCase c{.in = {16, 32, 224, 224}};
  OpHarness h("conv2d", c.attrs(), {c.in});
  std::mt19937 rng(24);
  h.randomize(rng);
  h.grad_outputs[0] = random_vector(rng, h.grad_outputs[0].size());
  const ConvGeometry g = c.geometry();
  constexpr int kRepeats = 3;
  double ref_fwd = 1e30, ref_bwd = 1e30, fwd = 1e30, bwd = 1e30;
  for (int i = 0; i < kRepeats; ++i) {
    std::clock_t start = std::clock();
    h.forward();
    ref_fwd = std::min(ref_fwd, milliseconds_since(start));
    start = std::clock();
    h.backward();
    ref_bwd = std::min(ref_bwd, milliseconds_since(start));
    start = std::clock();
    one_output_conv_forward(g, h.inputs[0].data(), h.params[0].data(), h.params[1].data(),
                            h.outputs[0].data());
    fwd = std::min(fwd, milliseconds_since(start));
    start = std::clock();
    one_output_conv_backward(g, h.inputs[0].data(), h.params[0].data(), h.grad_outputs[0].data(),
                             h.grad_inputs[0].data(), h.grad_params[0].data(),
                             h.grad_params[1].data());
    bwd = std::min(bwd, milliseconds_since(start));
  }
  std::printf(
      "%s: CPU time: reference forward %.1f ms backward %.1f ms; one-output forward %.1f ms "
      "backward %.1f ms\n",
      c.describe().c_str(), ref_fwd, ref_bwd, fwd, bwd);
}

}  // namespace
}  // namespace emt::test
