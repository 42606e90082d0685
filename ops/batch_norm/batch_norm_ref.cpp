#include <cmath>

#include "ops/batch_norm/batch_norm.h"
#include "ops/core/parallel.h"

namespace emt {

Inferred BatchNormOp::infer(std::span<const Shape> inputs) const {
  const Shape& in = inputs[0];
  if (in.size() != 2 && in.size() != 4)
    throw OpError("batch_norm needs a [N,C,H,W] or [N,C] input, got " + shape_str(in));
  const int64_t c = in[1];
  Inferred inf{{in}, {}, shape_numel(in) / in[0]};
  inf.params = {
      {"gamma", {c}, ParamInit::kOnes},
      {"beta", {c}, ParamInit::kZeros},
      {"running_mean", {c}, ParamInit::kZeros, 1, false},
      {"running_var", {c}, ParamInit::kOnes, 1, false},
  };
  return inf;
}

void BatchNormOp::forward(const ForwardArgs& args) {
  const Tensor& in = args.inputs[0];
  const ChannelLayout layout = ChannelLayout::of(in.shape);
  const bool train = args.mode == Mode::kTrain;
  const int64_t count = layout.count();
  if (train && count < 2)
    throw OpError("batch_norm in train mode needs more than one value per channel, got input " +
                  shape_str(in.shape));
  if (train) {
    mean_.assign(static_cast<size_t>(layout.channels), 0.0);
    inv_std_.assign(static_cast<size_t>(layout.channels), 0.0);
  }

  const float* x = in.data;
  const float* gamma = args.params[kGamma].data;
  const float* beta = args.params[kBeta].data;
  float* running_mean = args.params[kRunningMean].data;
  float* running_var = args.params[kRunningVar].data;
  float* y = args.outputs[0].data;
  parallel_for(layout.channels, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double mean = running_mean[c];
      double var = running_var[c];
      if (train) {
        double sum = 0;
        layout.for_each(c, [&](int64_t i) { sum += x[i]; });
        mean = sum / static_cast<double>(count);
        // Two passes: sum(x^2) - mean^2 cancels catastrophically when |mean| >> std.
        double sq = 0;
        layout.for_each(c, [&](int64_t i) { sq += (x[i] - mean) * (x[i] - mean); });
        var = sq / static_cast<double>(count);
        const double unbiased = sq / static_cast<double>(count - 1);
        running_mean[c] = static_cast<float>((1 - momentum_) * running_mean[c] + momentum_ * mean);
        running_var[c] =
            static_cast<float>((1 - momentum_) * running_var[c] + momentum_ * unbiased);
      }
      const double inv_std = 1.0 / std::sqrt(var + eps_);
      if (train) {
        mean_[c] = mean;
        inv_std_[c] = inv_std;
      }
      const float m = static_cast<float>(mean);
      const float scale = static_cast<float>(gamma[c] * inv_std);
      const float shift = beta[c];
      layout.for_each(c, [&](int64_t i) { y[i] = (x[i] - m) * scale + shift; });
    }
  });
}

const OpSchema& batch_norm_schema() {
  static const OpSchema schema{
      "batch_norm",
      "per-channel normalisation with learned scale and shift; running statistics for eval",
      1,
      1,
      {{"eps", AttrType::kFloat, 1e-5, "added to the variance before the square root"},
       {"momentum", AttrType::kFloat, 0.1,
        "weight of the batch statistics in the running update (PyTorch convention)"}},
      [](const Attrs& attrs) {
        const double eps = attrs.get_float("eps");
        const double momentum = attrs.get_float("momentum");
        if (!(eps >= 0)) throw OpError("batch_norm needs eps >= 0, got " + std::to_string(eps));
        if (!(momentum >= 0 && momentum <= 1))
          throw OpError("batch_norm needs 0 <= momentum <= 1, got " + std::to_string(momentum));
        return std::unique_ptr<Op>(std::make_unique<BatchNormOp>(eps, momentum));
      }};
  return schema;
}

}  // namespace emt
