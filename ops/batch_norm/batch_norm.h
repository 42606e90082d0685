// batch_norm over axis 1 of [N,C,H,W] or [N,C]: y = gamma * (x - mean) / sqrt(var + eps) + beta.
//
// kTrain normalises with the batch statistics (biased variance) and moves the running statistics
// the PyTorch way, running = (1 - momentum) * running + momentum * batch, using the UNBIASED
// batch variance for running_var, so that trained weights behave identically in both frameworks.
// kEval normalises with the running statistics and changes nothing.
//
// backward differentiates the batch-statistics path only: it assumes the preceding forward on
// this instance was kTrain and uses the per-channel mean and 1/std that forward saved.
#pragma once

#include <vector>

#include "ops/core/op.h"

namespace emt {

const OpSchema& batch_norm_schema();

class BatchNormOp final : public Op {
 public:
  // Param order, as published by infer().
  enum Param { kGamma = 0, kBeta = 1, kRunningMean = 2, kRunningVar = 3 };

  BatchNormOp(double eps, double momentum) : eps_(eps), momentum_(momentum) {}

  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;

 private:
  // The elements of one channel: `batch` runs of `spatial` contiguous floats (spatial = H * W,
  // or 1 for [N,C]).
  struct ChannelLayout {
    int64_t batch = 0, channels = 0, spatial = 1;

    // Assumes a shape infer() accepted.
    static ChannelLayout of(const Shape& shape) {
      return {shape[0], shape[1], shape.size() == 4 ? shape[2] * shape[3] : 1};
    }

    int64_t count() const { return batch * spatial; }

    // Calls fn(flat_index) for every element of channel c.
    template <typename Fn>
    void for_each(int64_t c, Fn&& fn) const {
      for (int64_t n = 0; n < batch; ++n) {
        const int64_t base = (n * channels + c) * spatial;
        for (int64_t s = 0; s < spatial; ++s) fn(base + s);
      }
    }
  };

  double eps_;
  double momentum_;
  // Batch statistics of the last kTrain forward, per channel; backward reads them.
  std::vector<double> mean_;
  std::vector<double> inv_std_;
};

}  // namespace emt
