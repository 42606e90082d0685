#include "ops/core/parallel.h"
#include "ops/global_avg_pool/global_avg_pool.h"

namespace emt {

Inferred GlobalAvgPoolOp::infer(std::span<const Shape> inputs) const {
  const Shape& in = inputs[0];
  if (in.size() != 4 || in[2] * in[3] == 0)
    throw OpError("global_avg_pool needs a non-empty [N,C,H,W] input, got " + shape_str(in));
  return {{{in[0], in[1]}}, {}, in[1] * in[2] * in[3]};
}

void GlobalAvgPoolOp::forward(const ForwardArgs& args) {
  const Tensor& in = args.inputs[0];
  const int64_t planes = in.dim(0) * in.dim(1);
  const int64_t plane_size = in.dim(2) * in.dim(3);
  const float* src = in.data;
  float* dst = args.outputs[0].data;
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float* plane = src + p * plane_size;
      double sum = 0;
      for (int64_t i = 0; i < plane_size; ++i) sum += plane[i];
      dst[p] = static_cast<float>(sum / static_cast<double>(plane_size));
    }
  });
}

const OpSchema& global_avg_pool_schema() {
  static const OpSchema schema{
      "global_avg_pool", "[N,C,H,W] -> [N,C] mean over H and W", 1, 1, {}, [](const Attrs&) {
        return std::unique_ptr<Op>(std::make_unique<GlobalAvgPoolOp>());
      }};
  return schema;
}

}  // namespace emt
