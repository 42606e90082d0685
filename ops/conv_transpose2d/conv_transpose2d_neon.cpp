#include "ops/conv_transpose2d/conv_transpose2d_neon.h"

#include "ops/conv2d/conv2d_neon_kernels.h"

namespace emt {

// The transposed conv reads g's output side and writes its input side: source channels are
// g.cout, destination channels g.cin, and the filters are the conv2d's, read transposed.
void conv_transpose2d_neon(const ConvGeometry& g, const float* input, const float* weight,
                           const float* bias, ConvActivation act, float* output) {
  const int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, kk = g.kernel * g.kernel;
  if (conv_detail::is_pointwise(g)) {
    const int64_t plane = g.h * g.w;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t group = 0; group < g.groups; ++group)
        conv_neon::pointwise({.rows = cin_g,
                              .depth = cout_g,
                              .plane = plane,
                              .weight = weight + group * cout_g * cin_g,
                              .weight_row = 1,
                              .weight_depth = cin_g,
                              .src = input + (n * g.cout + group * cout_g) * plane,
                              .bias = bias ? bias + group * cin_g : nullptr,
                              .act = act,
                              .dst = output + (n * g.cin + group * cin_g) * plane});
    return;
  }
  conv_neon::direct({.batch = g.n,
                     .groups = g.groups,
                     .src_channels = cout_g,
                     .dst_channels = cin_g,
                     .rows = {g.ho, g.h, g.kernel, g.stride, g.pad_top, true},
                     .cols = {g.wo, g.w, g.kernel, g.stride, g.pad_left, true},
                     .weight_dst = kk,
                     .weight_src = cin_g * kk},
                    input, weight, bias, act, output);
}

}  // namespace emt
