#include "ops/core/parallel.h"
#include "ops/global_avg_pool/global_avg_pool.h"

namespace emt {

void GlobalAvgPoolOp::backward(const BackwardArgs& args) {
  const Tensor& grad_in = args.grad_inputs[0];
  if (grad_in.empty()) return;
  const int64_t planes = grad_in.dim(0) * grad_in.dim(1);
  const int64_t plane_size = grad_in.dim(2) * grad_in.dim(3);
  const float* grad_out = args.grad_outputs[0].data;
  float* dst = grad_in.data;
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float g = grad_out[p] / static_cast<float>(plane_size);
      float* plane = dst + p * plane_size;
      for (int64_t i = 0; i < plane_size; ++i) plane[i] += g;
    }
  });
}

}  // namespace emt
