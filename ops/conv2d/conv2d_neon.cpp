#include "ops/conv2d/conv2d_neon.h"

#include "ops/conv2d/conv2d_neon_kernels.h"

namespace emt {

void conv2d_neon(const ConvGeometry& g, const float* x, const float* weight, const float* bias,
                 ConvActivation act, float* y) {
  const int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, kk = g.kernel * g.kernel;
  if (conv_detail::is_pointwise(g)) {
    const int64_t plane = g.h * g.w;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t group = 0; group < g.groups; ++group)
        conv_neon::pointwise({.rows = cout_g,
                              .depth = cin_g,
                              .plane = plane,
                              .weight = weight + group * cout_g * cin_g,
                              .weight_row = cin_g,
                              .weight_depth = 1,
                              .src = x + (n * g.cin + group * cin_g) * plane,
                              .bias = bias ? bias + group * cout_g : nullptr,
                              .act = act,
                              .dst = y + (n * g.cout + group * cout_g) * plane});
    return;
  }
  conv_neon::direct({.batch = g.n,
                     .groups = g.groups,
                     .src_channels = cin_g,
                     .dst_channels = cout_g,
                     .rows = {g.h, g.ho, g.kernel, g.stride, g.pad_top, false},
                     .cols = {g.w, g.wo, g.kernel, g.stride, g.pad_left, false},
                     .weight_dst = cin_g * kk,
                     .weight_src = kk},
                    x, weight, bias, act, y);
}

}  // namespace emt
