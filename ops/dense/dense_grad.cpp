#include "ops/core/parallel.h"
#include "ops/dense/dense.h"

namespace emt {

void DenseOp::backward(const BackwardArgs& args) {
  const int64_t batch = args.inputs[0].dim(0);
  const int64_t k = args.inputs[0].dim(1);
  const int64_t out = out_features_;
  const float* x = args.inputs[0].data;
  const float* w = args.params[0].data;
  const float* gy = args.grad_outputs[0].data;
  float* gx = args.grad_inputs[0].data;
  float* gw = args.grad_params[0].data;
  float* gb = has_bias_ ? args.grad_params[1].data : nullptr;

  // Each task owns whole rows of grad_weight / grad_bias, so tasks never write the same float.
  if (gw || gb) {
    parallel_for(out, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        float bias_sum = 0.0f;
        for (int64_t n = 0; n < batch; ++n) {
          const float g = gy[n * out + o];
          bias_sum += g;
          if (!gw) continue;
          const float* x_row = x + n * k;
          float* gw_row = gw + o * k;
          for (int64_t i = 0; i < k; ++i) gw_row[i] += g * x_row[i];
        }
        if (gb) gb[o] += bias_sum;
      }
    });
  }

  // Split over batch rows instead: a row of grad_input gathers from every output feature.
  if (gx) {
    parallel_for(batch, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        float* gx_row = gx + n * k;
        for (int64_t o = 0; o < out; ++o) {
          const float g = gy[n * out + o];
          const float* w_row = w + o * k;
          for (int64_t i = 0; i < k; ++i) gx_row[i] += g * w_row[i];
        }
      }
    });
  }
}

}  // namespace emt
