#include "ops/conv_transpose2d/conv_transpose2d_onednn.h"

#include <memory>
#include <string>

#include "ops/conv2d/conv2d_onednn.h"
#include "ops/conv_transpose2d/conv_transpose2d.h"

namespace emt {
namespace {

class ConvTranspose2dOnednnOp final : public onednn::ConvOp {
 public:
  explicit ConvTranspose2dOnednnOp(const Attrs& attrs)
      : ConvOp("conv_transpose2d", conv_transpose2d_schema().create(attrs), attrs.get_bool("bias"),
               parse_conv_activation("conv_transpose2d", attrs.get_string("activation"))),
        stride_(attrs.get_int("stride")),
        pad_(attrs.get_int("pad")) {}

  // Read off the reference's inference, so that the two cannot disagree on shapes. output_pad
  // needs no field: it only shows in the output size, which dst carries.
  onednn::ConvSpec spec(const Shape& input) const override {
    const Inferred inferred = infer(std::span<const Shape>(&input, 1));
    onednn::ConvSpec s;
    s.transposed = true;
    s.src = input;
    s.dst = inferred.outputs[0];
    s.kernel = inferred.params[0].shape[2];  // weight [cin, out, k, k]
    s.stride = stride_;
    // The op's documented automatic padding, the same on every side.
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = pad_ == -1 ? (s.kernel - 1) / 2 : pad_;
    s.bias = inferred.params.size() > 1;
    s.activation = activation();
    return s;
  }

 private:
  int64_t stride_, pad_;
};

std::string conv_transpose2d_onednn_supports(const Attrs& attrs, std::span<const Shape> inputs) {
  try {
    // The reference constructor rejects what neither can run (output_pad >= stride, ...).
    return ConvTranspose2dOnednnOp(attrs).probe(inputs);
  } catch (const OpError& e) {
    return e.what();
  }
}

}  // namespace

const OpVariant& conv_transpose2d_onednn_variant() {
  static const OpVariant variant{"conv_transpose2d",
                                 "onednn",
                                 conv_transpose2d_onednn_supports,
                                 [](const Attrs& attrs) -> std::unique_ptr<Op> {
                                   return std::make_unique<ConvTranspose2dOnednnOp>(attrs);
                                 },
                                 LayoutPolicy::kEach,
                                 /*bf16=*/true};
  return variant;
}

}  // namespace emt
