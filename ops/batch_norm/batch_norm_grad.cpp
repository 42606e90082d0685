#include "ops/batch_norm/batch_norm.h"
#include "ops/core/parallel.h"

namespace emt {

// With xhat = (x - mean) * inv_std and y = gamma * xhat + beta, differentiating through the
// batch mean and variance gives
//   dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)),
//   dgamma = sum(dy * xhat), dbeta = sum(dy).
void BatchNormOp::backward(const BackwardArgs& args) {
  const Tensor& in = args.inputs[0];
  const ChannelLayout layout = ChannelLayout::of(in.shape);
  if (mean_.size() != static_cast<size_t>(layout.channels))
    throw OpError("batch_norm backward needs a preceding train-mode forward, input " +
                  shape_str(in.shape));

  const float* x = in.data;
  const float* gamma = args.params[kGamma].data;
  const float* dy = args.grad_outputs[0].data;
  float* dx = args.grad_inputs[0].data;
  float* dgamma = args.grad_params[kGamma].data;
  float* dbeta = args.grad_params[kBeta].data;
  const double count = static_cast<double>(layout.count());
  parallel_for(layout.channels, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const double mean = mean_[c];
      const double inv_std = inv_std_[c];
      double sum_dy = 0;
      double sum_dy_xhat = 0;
      layout.for_each(c, [&](int64_t i) {
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - mean) * inv_std;
      });
      if (dgamma) dgamma[c] += static_cast<float>(sum_dy_xhat);
      if (dbeta) dbeta[c] += static_cast<float>(sum_dy);
      if (!dx) continue;
      const double scale = gamma[c] * inv_std;
      const double mean_dy = sum_dy / count;
      const double mean_dy_xhat = sum_dy_xhat / count;
      layout.for_each(c, [&](int64_t i) {
        const double xhat = (x[i] - mean) * inv_std;
        dx[i] += static_cast<float>(scale * (dy[i] - mean_dy - xhat * mean_dy_xhat));
      });
    }
  });
}

}  // namespace emt
