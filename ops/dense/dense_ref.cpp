#include "ops/core/parallel.h"
#include "ops/dense/dense.h"

namespace emt {

Inferred DenseOp::infer(std::span<const Shape> inputs) const {
  const Shape& in = inputs[0];
  if (in.size() != 2 || in[1] <= 0)
    throw OpError("dense needs a [N,K] input with K > 0, got " + shape_str(in) +
                  " (global_avg_pool produces one from [N,C,H,W])");
  const int64_t k = in[1];
  Inferred inf{{{in[0], out_features_}}, {}, out_features_ * k};
  inf.params.push_back({"weight", {out_features_, k}, ParamInit::kHeNormal, k});
  if (has_bias_) inf.params.push_back({"bias", {out_features_}, ParamInit::kZeros});
  return inf;
}

void DenseOp::forward(const ForwardArgs& args) {
  const int64_t batch = args.inputs[0].dim(0);
  const int64_t k = args.inputs[0].dim(1);
  const int64_t out = out_features_;
  const float* x = args.inputs[0].data;
  const float* w = args.params[0].data;
  const float* b = has_bias_ ? args.params[1].data : nullptr;
  float* y = args.outputs[0].data;
  parallel_for(out, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const float* w_row = w + o * k;
      for (int64_t n = 0; n < batch; ++n) {
        const float* x_row = x + n * k;
        float acc = b ? b[o] : 0.0f;
        for (int64_t i = 0; i < k; ++i) acc += x_row[i] * w_row[i];
        y[n * out + o] = acc;
      }
    }
  });
}

const OpSchema& dense_schema() {
  static const OpSchema schema{
      "dense",
      "fully connected: [N,K] -> [N,out], weight [out,K]",
      1,
      1,
      {{"out", AttrType::kInt, std::nullopt, "number of output features"},
       {"bias", AttrType::kBool, true, "add a learned bias per output feature"}},
      [](const Attrs& attrs) {
        const int64_t out = attrs.get_int("out");
        if (out <= 0) throw OpError("dense needs out > 0, got " + std::to_string(out));
        return std::unique_ptr<Op>(std::make_unique<DenseOp>(out, attrs.get_bool("bias")));
      }};
  return schema;
}

}  // namespace emt
