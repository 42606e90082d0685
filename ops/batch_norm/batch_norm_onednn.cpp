#include "ops/batch_norm/batch_norm_onednn.h"

#include <optional>
#include <vector>

#include "ops/batch_norm/batch_norm.h"
#include "ops/core/onednn_variant_op.h"

namespace emt {
namespace {

using dnnl::memory;
using dnnl::normalization_flags;
using onednn::engine;
using onednn::plain_desc;
using onednn::Port;
using onednn::stream;
using Role = Port::Role;

// gamma and beta as two [C] arguments: emt's own buffers, where the older use_scale_shift
// would want them packed into one [2, C] copy (and its gradient unpacked again).
const normalization_flags kScaleShift =
    normalization_flags::use_scale | normalization_flags::use_shift;

// Scratch slots (see onednn::scratch), distinct for all ports of one op. On these plain layouts
// only the accumulated gradients take one.
enum Slot {
  kSrc,
  kDst,
  kScale,
  kShift,
  kMean,
  kVariance,
  kDiffDst,
  kDiffSrc,
  kDiffScale,
  kDiffShift
};

// In the tensors' own layout (they share it, LayoutPolicy::kUniform): normalisation is
// memory-bound, and a reorder would cost as much as the normalisation.
class BatchNormPrimitives {
 public:
  BatchNormPrimitives(const Shape& input, Layout layout, float eps)
      : data_(onednn::desc_of(input, layout)),
        channels_(plain_desc({input[1]})),
        eps_(eps),
        train_pd_(dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, data_,
                                                          eps, kScaleShift),
                  engine()) {}

  // y from the batch statistics, which land in mean and variance (the biased one: sum / N).
  void forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                     float* variance) {
    if (!train_) train_.emplace(train_pd_, data_, channels_, Role::kWrite);
    train_->execute(x, gamma, beta, y, mean, variance);
  }

  // y from the running statistics, which stay as they are.
  void forward_eval(const float* x, const float* gamma, const float* beta,
                    const float* running_mean, const float* running_var, float* y) {
    if (!eval_) {
      const dnnl::batch_normalization_forward::primitive_desc pd(
          dnnl::batch_normalization_forward::desc(
              dnnl::prop_kind::forward_inference, data_, eps_,
              kScaleShift | normalization_flags::use_global_stats),
          engine());
      eval_.emplace(pd, data_, channels_, Role::kRead);
    }
    eval_->execute(x, gamma, beta, y, running_mean, running_var);
  }

  // Differentiates through the batch statistics mean and variance of the train forward that
  // produced them; the gradients are added to dx, dgamma and dbeta.
  // dx_zeroed: dx holds zeros (BackwardArgs::zeroed_grad_inputs), so it may be written.
  void backward(const float* x, const float* gamma, const float* beta, const float* mean,
                const float* variance, const float* dy, float* dx, bool dx_zeroed, float* dgamma,
                float* dbeta) {
    if (!bwd_) {
      // prop_kind::backward computes all three gradients in one primitive; the unwanted ones
      // go to scratch.
      const dnnl::batch_normalization_backward::primitive_desc pd(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, data_, data_, eps_,
                                                   kScaleShift),
          engine(), train_pd_);
      bwd_.emplace();
      bwd_->prim = dnnl::batch_normalization_backward(pd);
      bwd_->src = Port(data_, pd.src_desc(), Role::kRead, kSrc);
      bwd_->mean = Port(channels_, pd.mean_desc(), Role::kRead, kMean);
      bwd_->variance = Port(channels_, pd.variance_desc(), Role::kRead, kVariance);
      bwd_->diff_dst = Port(data_, pd.diff_dst_desc(), Role::kRead, kDiffDst);
      bwd_->scale = Port(channels_, channels_, Role::kRead, kScale);
      bwd_->shift = Port(channels_, channels_, Role::kRead, kShift);
      bwd_->diff_src = Port(data_, pd.diff_src_desc(), Role::kAccumulate, kDiffSrc);
      bwd_->diff_scale = Port(channels_, channels_, Role::kAccumulate, kDiffScale);
      bwd_->diff_shift = Port(channels_, channels_, Role::kAccumulate, kDiffShift);
    }
    Backward& b = *bwd_;
    b.prim.execute(stream(), {{DNNL_ARG_SRC, b.src.bind(x)},
                              {DNNL_ARG_MEAN, b.mean.bind(mean)},
                              {DNNL_ARG_VARIANCE, b.variance.bind(variance)},
                              {DNNL_ARG_DIFF_DST, b.diff_dst.bind(dy)},
                              {DNNL_ARG_SCALE, b.scale.bind(gamma)},
                              // Unused by the gradients, yet oneDNN 2.6 refuses to run without.
                              {DNNL_ARG_SHIFT, b.shift.bind(beta)},
                              {DNNL_ARG_DIFF_SRC, b.diff_src.bind_gradient(dx, dx_zeroed)},
                              {DNNL_ARG_DIFF_SCALE, b.diff_scale.bind(dgamma)},
                              {DNNL_ARG_DIFF_SHIFT, b.diff_shift.bind(dbeta)}});
    b.diff_src.finish();
    b.diff_scale.finish();
    b.diff_shift.finish();
    stream().wait();
  }

 private:
  // A forward primitive with its arguments. oneDNN's scale and shift are [C] vectors it does
  // not let choose a layout, hence no query for them.
  struct Forward {
    // stats: kWrite for the batch statistics training computes, kRead for the running ones
    // use_global_stats takes.
    Forward(const dnnl::batch_normalization_forward::primitive_desc& pd, const memory::desc& data,
            const memory::desc& channels, Role stats)
        : prim(pd),
          src(data, pd.src_desc(), Role::kRead, kSrc),
          dst(data, pd.dst_desc(), Role::kWrite, kDst),
          scale(channels, channels, Role::kRead, kScale),
          shift(channels, channels, Role::kRead, kShift),
          mean(channels, pd.mean_desc(), stats, kMean),
          variance(channels, pd.variance_desc(), stats, kVariance) {}

    void execute(const float* x, const float* gamma, const float* beta, float* y,
                 const float* mean_data, const float* variance_data) {
      prim.execute(stream(), {{DNNL_ARG_SRC, src.bind(x)},
                              {DNNL_ARG_SCALE, scale.bind(gamma)},
                              {DNNL_ARG_SHIFT, shift.bind(beta)},
                              {DNNL_ARG_DST, dst.bind(y)},
                              {DNNL_ARG_MEAN, mean.bind(mean_data)},
                              {DNNL_ARG_VARIANCE, variance.bind(variance_data)}});
      dst.finish();
      mean.finish();
      variance.finish();
      stream().wait();
    }

    dnnl::batch_normalization_forward prim;
    Port src, dst, scale, shift, mean, variance;
  };
  struct Backward {
    dnnl::primitive prim;
    Port src, mean, variance, diff_dst, scale, shift, diff_src, diff_scale, diff_shift;
  };

  memory::desc data_, channels_;
  float eps_;
  dnnl::batch_normalization_forward::primitive_desc train_pd_;
  std::optional<Forward> train_, eval_;
  std::optional<Backward> bwd_;
};

class BatchNormOnednnOp final : public onednn::VariantOp<BatchNormPrimitives> {
 public:
  using Param = BatchNormOp::Param;

  explicit BatchNormOnednnOp(const Attrs& attrs)
      : VariantOp(batch_norm_schema(), attrs),
        eps_(static_cast<float>(attrs.get_float("eps"))),
        momentum_(attrs.get_float("momentum")) {}

  void forward(const ForwardArgs& args) override {
    const Tensor& in = args.inputs[0];
    const int64_t channels = in.dim(1);
    const int64_t count = in.numel() / channels;
    const bool train = args.mode == Mode::kTrain;
    if (train && count < 2)
      throw OpError("batch_norm in train mode needs more than one value per channel, got input " +
                    shape_str(in.shape));
    const float* gamma = args.params[Param::kGamma].data;
    const float* beta = args.params[Param::kBeta].data;
    float* running_mean = args.params[Param::kRunningMean].data;
    float* running_var = args.params[Param::kRunningVar].data;
    run(in, [&](BatchNormPrimitives& p) {
      if (!train) {
        p.forward_eval(in.data, gamma, beta, running_mean, running_var, args.outputs[0].data);
        return;
      }
      mean_.resize(static_cast<size_t>(channels));
      variance_.resize(static_cast<size_t>(channels));
      p.forward_train(in.data, gamma, beta, args.outputs[0].data, mean_.data(), variance_.data());
    });
    if (!train) return;
    // The reference's update (PyTorch's): running_var moves towards the UNBIASED variance,
    // sum / (N - 1), where oneDNN returns sum / N.
    const double n = static_cast<double>(count);
    for (int64_t c = 0; c < channels; ++c) {
      const double unbiased = variance_[c] * n / (n - 1);
      running_mean[c] =
          static_cast<float>((1 - momentum_) * running_mean[c] + momentum_ * mean_[c]);
      running_var[c] = static_cast<float>((1 - momentum_) * running_var[c] + momentum_ * unbiased);
    }
  }

  // As the reference: differentiates the batch-statistics path with the statistics the last
  // train forward saved.
  void backward(const BackwardArgs& args) override {
    const Tensor& in = args.inputs[0];
    if (mean_.size() != static_cast<size_t>(in.dim(1)))
      throw OpError("batch_norm backward needs a preceding train-mode forward, input " +
                    shape_str(in.shape));
    float* dx = args.grad_inputs[0].data;
    float* dgamma = args.grad_params[Param::kGamma].data;
    float* dbeta = args.grad_params[Param::kBeta].data;
    if (!dx && !dgamma && !dbeta) return;
    run(in, [&](BatchNormPrimitives& p) {
      p.backward(in.data, args.params[Param::kGamma].data, args.params[Param::kBeta].data,
                 mean_.data(), variance_.data(), args.grad_outputs[0].data, dx,
                 args.grad_input_zeroed(0), dgamma, dbeta);
    });
  }

 private:
  std::unique_ptr<BatchNormPrimitives> make(const Shape& input, Layout layout,
                                            DataType) const override {
    return std::make_unique<BatchNormPrimitives>(input, layout, eps_);
  }

  float eps_;
  double momentum_;
  // Batch statistics of the last train forward, per channel, as oneDNN's backward takes them.
  std::vector<float> mean_, variance_;
};

}  // namespace

const OpVariant& batch_norm_onednn_variant() {
  static const OpVariant variant{"batch_norm", "onednn", onednn::supports<BatchNormOnednnOp>,
                                 onednn::create<BatchNormOnednnOp>, LayoutPolicy::kUniform};
  return variant;
}

}  // namespace emt
