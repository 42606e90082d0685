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

// Channel counts for each src layout: awkward ones plain, whole blocks of 16 blocked.
std::vector<int64_t> channel_counts(Layout layout) {
  if (layout == Layout::kChannelBlocked) return {16, 32, 48};
  return {1, 3, 17, 32};
}

// C, spatial sizes, kernels, strides and paddings crossed; batch drawn from rng. The 5x83 and
// 3x150 planes are wide enough for the vector strips (4 and 1 registers) plus a scalar tail.
std::vector<OneOutputCase> cases(std::mt19937& rng, Layout layout) {
  std::uniform_int_distribution<int64_t> batch(1, 3);
  std::vector<OneOutputCase> out;
  for (int64_t c : channel_counts(layout))
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

// A plain [n, c, h, w] tensor in `layout`, and back.
std::vector<float> to_layout(const std::vector<float>& plain, const Shape& shape, Layout layout) {
  if (layout == Layout::kPlain) return plain;
  std::vector<float> blocked(plain.size());
  block_channels(plain.data(), shape, blocked.data());
  return blocked;
}
std::vector<float> from_layout(const std::vector<float>& data, const Shape& shape, Layout layout) {
  if (layout == Layout::kPlain) return data;
  std::vector<float> plain(data.size());
  unblock_channels(data.data(), shape, plain.data());
  return plain;
}

std::string describe(const OneOutputCase& c, Layout layout) {
  return c.describe() + " src=" + layout_name(layout);
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

TEST(OneOutputConv, BlockedFitsOnlyWholeChannelBlocks) {
  EXPECT_TRUE(
      one_output_conv_fits(OneOutputCase{.in = {1, 32, 6, 6}}.geometry(), Layout::kChannelBlocked));
  EXPECT_FALSE(
      one_output_conv_fits(OneOutputCase{.in = {1, 17, 6, 6}}.geometry(), Layout::kChannelBlocked));
}

// The reference conv2d runs on plain tensors; src goes in, and diff_src comes out, through
// block_channels and unblock_channels.
void check_forward(Layout layout, uint32_t seed) {
  std::mt19937 rng(seed);
  for (const OneOutputCase& c : cases(rng, layout)) {
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    h.forward();
    const ConvGeometry g = c.geometry();
    ASSERT_TRUE(one_output_conv_fits(g, layout)) << describe(c, layout);
    const std::vector<float> src = to_layout(h.inputs[0], c.in, layout);
    std::vector<float> dst = random_vector(rng, h.outputs[0].size());  // must be overwritten
    one_output_conv_forward(g, src.data(), h.params[0].data(),
                            c.bias ? h.params[1].data() : nullptr, dst.data(), layout);
    expect_close(describe(c, layout), "output", dst, h.outputs[0]);
  }
}

TEST(OneOutputConv, ForwardMatchesReference) { check_forward(Layout::kPlain, 21); }
TEST(OneOutputConv, BlockedForwardMatchesReference) { check_forward(Layout::kChannelBlocked, 31); }

// Gradients added into random buffers; each case also runs once with a subset of them null
// (cycling through all seven non-empty subsets), which must leave the others unchanged.
void check_backward(Layout layout, uint32_t seed) {
  std::mt19937 rng(seed);
  int subset = 0;
  for (OneOutputCase c : cases(rng, layout)) {
    c.bias = true;  // the kernel always has a bias gradient to give
    OpHarness h("conv2d", c.attrs(), {c.in});
    h.randomize(rng);
    h.grad_outputs[0] = random_vector(rng, h.grad_outputs[0].size());
    h.forward();
    h.backward();
    const ConvGeometry g = c.geometry();
    const std::vector<float> src = to_layout(h.inputs[0], c.in, layout);
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
      std::vector<float> ds_in_layout = to_layout(ds, c.in, layout);
      one_output_conv_backward(g, src.data(), h.params[0].data(), h.grad_outputs[0].data(),
                               wanted & 1 ? ds_in_layout.data() : nullptr,
                               wanted & 2 ? dw.data() : nullptr, wanted & 4 ? db.data() : nullptr,
                               layout);
      const std::string repro = describe(c, layout) + " grads=" + std::to_string(wanted);
      expect_close(repro, "grad input", from_layout(ds_in_layout, c.in, layout), want_ds);
      expect_close(repro, "grad weight", dw, want_dw);
      expect_close(repro, "grad bias", db, want_db);
    }
  }
}

TEST(OneOutputConv, BackwardAccumulatesAndMatchesReference) { check_backward(Layout::kPlain, 22); }
TEST(OneOutputConv, BlockedBackwardAccumulatesAndMatchesReference) {
  check_backward(Layout::kChannelBlocked, 32);
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

Results run_all(const ConvGeometry& g, Layout layout, const std::vector<float>& src,
                const std::vector<float>& weight, const std::vector<float>& diff_dst) {
  Results r{std::vector<float>(diff_dst.size()), std::vector<float>(src.size()),
            std::vector<float>(weight.size()), std::vector<float>(1)};
  const float bias = 0.25f;
  one_output_conv_forward(g, src.data(), weight.data(), &bias, r.dst.data(), layout);
  one_output_conv_backward(g, src.data(), weight.data(), diff_dst.data(), r.ds.data(), r.dw.data(),
                           r.db.data(), layout);
  return r;
}

TEST(OneOutputConv, ResultsDoNotDependOnThreadCount) {
  std::mt19937 rng(23);
  const std::pair<OneOutputCase, Layout> runs[] = {
      {{.in = {3, 17, 23, 70}}, Layout::kPlain},
      {{.in = {2, 5, 19, 41}, .stride = 2}, Layout::kPlain},
      {{.in = {2, 3, 9, 20}, .kernel = 5, .same_tf = true}, Layout::kPlain},
      {{.in = {3, 32, 23, 70}}, Layout::kChannelBlocked},
      {{.in = {2, 16, 19, 41}, .stride = 2}, Layout::kChannelBlocked},
      {{.in = {2, 48, 9, 20}, .kernel = 5, .same_tf = true}, Layout::kChannelBlocked}};
  for (const auto& [c, layout] : runs) {
    const ConvGeometry g = c.geometry();
    // Any values will do: the layout only decides which kernels run.
    const std::vector<float> src = random_vector(rng, g.n * g.cin * g.h * g.w);
    const std::vector<float> weight = random_vector(rng, g.cin * g.kernel * g.kernel);
    const std::vector<float> diff_dst = random_vector(rng, g.n * g.ho * g.wo);
    const Results serial = run_all(g, layout, src, weight, diff_dst);
    set_parallel_for(two_thread_for);
    const Results threaded = run_all(g, layout, src, weight, diff_dst);
    set_parallel_for(nullptr);
    EXPECT_TRUE(serial == threaded) << describe(c, layout);
  }
}

// Processor time rather than wall time: the benchmark is single-threaded, and on a shared
// machine wall time mostly measures the other processes.
double milliseconds_since(std::clock_t start) {
  return 1000.0 * static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
}

// The least CPU time of a few runs of fn, in milliseconds.
template <class Fn>
double least_milliseconds(const Fn& fn) {
  constexpr int kRepeats = 3;
  double least = 1e30;
  for (int i = 0; i < kRepeats; ++i) {
    const std::clock_t start = std::clock();
    fn();
    least = std::min(least, milliseconds_since(start));
  }
  return least;
}

// EMT-Net's mask logit, single-threaded, against the reference conv2d, with src plain and
// blocked; and the reorders that blocked src saves (src to plain, diff_src back to blocked).
// Prints timings only. Run with
// --gtest_also_run_disabled_tests --gtest_filter='*OneOutput*Benchmark*'.
TEST(OneOutputConv, DISABLED_BenchmarkMaskLogit) {
  const OneOutputCase c{.in = {16, 32, 224, 224}};
  OpHarness h("conv2d", c.attrs(), {c.in});
  std::mt19937 rng(24);
  h.randomize(rng);
  h.grad_outputs[0] = random_vector(rng, h.grad_outputs[0].size());
  const ConvGeometry g = c.geometry();
  const float* weight = h.params[0].data();
  const float* bias = h.params[1].data();
  const float* diff_dst = h.grad_outputs[0].data();
  float* diff_weight = h.grad_params[0].data();
  float* diff_bias = h.grad_params[1].data();
  std::vector<float> blocked_src = to_layout(h.inputs[0], c.in, Layout::kChannelBlocked);
  std::vector<float> blocked_ds(blocked_src.size());
  const double ref_fwd = least_milliseconds([&] { h.forward(); });
  const double ref_bwd = least_milliseconds([&] { h.backward(); });
  const double fwd = least_milliseconds(
      [&] { one_output_conv_forward(g, h.inputs[0].data(), weight, bias, h.outputs[0].data()); });
  const double bwd = least_milliseconds([&] {
    one_output_conv_backward(g, h.inputs[0].data(), weight, diff_dst, h.grad_inputs[0].data(),
                             diff_weight, diff_bias);
  });
  const double blocked_fwd = least_milliseconds([&] {
    one_output_conv_forward(g, blocked_src.data(), weight, bias, h.outputs[0].data(),
                            Layout::kChannelBlocked);
  });
  const double blocked_bwd = least_milliseconds([&] {
    one_output_conv_backward(g, blocked_src.data(), weight, diff_dst, blocked_ds.data(),
                             diff_weight, diff_bias, Layout::kChannelBlocked);
  });
  const double to_plain =
      least_milliseconds([&] { unblock_channels(blocked_src.data(), c.in, h.inputs[0].data()); });
  const double to_blocked =
      least_milliseconds([&] { block_channels(h.grad_inputs[0].data(), c.in, blocked_ds.data()); });
  std::printf(
      "%s: CPU time: reference forward %.1f ms backward %.1f ms; one-output plain src forward "
      "%.1f ms backward %.1f ms; blocked src forward %.1f ms backward %.1f ms; reorders src to "
      "plain %.1f ms diff_src to blocked %.1f ms\n",
      c.describe().c_str(), ref_fwd, ref_bwd, fwd, bwd, blocked_fwd, blocked_bwd, to_plain,
      to_blocked);
}

}  // namespace
}  // namespace emt::test
