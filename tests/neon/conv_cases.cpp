#include "tests/neon/conv_cases.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/conv2d/conv2d_neon.h"
#include "ops/conv_transpose2d/conv_transpose2d_neon.h"
#include "tests/neon/neon_check.h"

namespace emt::test {

ConvGeometry conv_geometry(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout,
                           int64_t kernel, int64_t stride, int64_t groups, ConvPadding padding) {
  ConvGeometry g;
  g.n = n;
  g.cin = cin;
  g.h = h;
  g.w = w;
  g.cout = cout;
  g.kernel = kernel;
  g.stride = stride;
  g.groups = groups;
  g.set_padding(padding);
  g.ho = (h + padding.top + padding.bottom - kernel) / stride + 1;
  g.wo = (w + padding.left + padding.right - kernel) / stride + 1;
  return g;
}

std::vector<ConvCase> random_conv_cases(uint32_t seed, int count) {
  std::mt19937 rng(seed);
  const auto pick = [&](std::initializer_list<int64_t> values) {
    return values.begin()[rng() % values.size()];
  };
  std::vector<ConvCase> cases;
  while (static_cast<int>(cases.size()) < count) {
    const int64_t kernel = pick({1, 1, 2, 3, 3, 3, 5}), stride = pick({1, 1, 2, 2, 3});
    const int64_t h = pick({1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33});
    const int64_t w = pick({1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33});
    ConvPadding padding;
    switch (rng() % 4) {
      case 0:
        padding = resolve_conv_padding(ConvPadMode::kSameTf, -1, kernel, stride, h, w);
        break;
      case 1: {
        const int64_t p = pick({0, 1, 2}) % kernel;
        padding = {p, p, p, p};
        break;
      }
      case 2:
        padding = {(kernel - 1) / 2, (kernel - 1) / 2, (kernel - 1) / 2, (kernel - 1) / 2};
        break;
      default:
        padding = {static_cast<int64_t>(rng() % kernel), static_cast<int64_t>(rng() % kernel),
                   static_cast<int64_t>(rng() % kernel), static_cast<int64_t>(rng() % kernel)};
    }
    int64_t groups = 1, cin = pick({1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33}),
            cout = pick({1, 3, 4, 5, 8, 9, 17});
    switch (rng() % 4) {
      case 0:  // depthwise
        groups = cout = cin;
        break;
      case 1:  // grouped
        groups = pick({2, 3});
        cin *= groups;
        cout *= groups;
        break;
      default:
        break;
    }
    const ConvGeometry g =
        conv_geometry(pick({1, 1, 3}), cin, h, w, cout, kernel, stride, groups, padding);
    if (h + padding.top + padding.bottom < kernel || w + padding.left + padding.right < kernel)
      continue;
    ConvCase c{g, rng() % 3 != 0, ConvActivation::kNone};
    // An activation only where enough outputs make an all-zero result (relu) unlikely.
    if (g.n * g.cout * g.ho * g.wo >= 16) c.act = static_cast<ConvActivation>(rng() % 3);
    cases.push_back(c);
  }
  return cases;
}

std::string describe(ConvDirection direction, const ConvCase& c) {
  const ConvGeometry& g = c.g;
  const auto s = [](int64_t v) { return std::to_string(v); };
  return std::string(direction == ConvDirection::kForward ? "conv2d_neon"
                                                          : "conv_transpose2d_neon") +
         " n" + s(g.n) + "c" + s(g.cin) + "h" + s(g.h) + "w" + s(g.w) + " o" + s(g.cout) + " k" +
         s(g.kernel) + " s" + s(g.stride) + " g" + s(g.groups) + " pad[" + s(g.pad_top) + "," +
         s(g.pad_left) + "," + s(g.pad_bottom) + "," + s(g.pad_right) + "] bias=" + s(c.bias) +
         " " + conv_activation_name(c.act);
}

void check_conv_case(ConvDirection direction, const ConvCase& c, uint32_t seed) {
  const ConvGeometry& g = c.g;
  const int64_t x_size = g.n * g.cin * g.h * g.w, y_size = g.n * g.cout * g.ho * g.wo;
  const bool forward = direction == ConvDirection::kForward;
  std::mt19937 rng(seed);
  const std::vector<float> src = random_values(forward ? x_size : y_size, rng);
  const std::vector<float> weight =
      random_values(g.cout * (g.cin / g.groups) * g.kernel * g.kernel, rng);
  const std::vector<float> bias = random_values(forward ? g.cout : g.cin, rng);
  const float* bias_data = c.bias ? bias.data() : nullptr;
  const int64_t dst_size = forward ? y_size : x_size;
  std::vector<float> want(dst_size);
  GuardedOutput got(dst_size);
  if (forward) {
    conv2d_gather(g, src.data(), weight.data(), bias_data, want.data(), false, c.act);
    conv2d_neon(g, src.data(), weight.data(), bias_data, c.act, got.data());
  } else {
    conv2d_scatter(g, src.data(), weight.data(), bias_data, want.data(), false, c.act);
    conv_transpose2d_neon(g, src.data(), weight.data(), bias_data, c.act, got.data());
  }
  // The longest sum: every input channel of a group through every tap.
  const double length =
      static_cast<double>((forward ? g.cin / g.groups : g.cout / g.groups) * g.kernel * g.kernel);
  const std::string repro = describe(direction, c);
  expect_close(repro, got.values(repro), want, 1e-5 * std::sqrt(length));
}

}  // namespace emt::test
