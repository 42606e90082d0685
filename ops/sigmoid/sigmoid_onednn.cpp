#include "ops/sigmoid/sigmoid_onednn.h"

#include "ops/core/onednn_eltwise.h"
#include "ops/sigmoid/sigmoid.h"

namespace emt {
namespace {

// The backward through the output, y * (1 - y), as sigmoid_grad: no second exp.
constexpr onednn::EltwiseSpec kSigmoid{sigmoid_schema,
                                       dnnl::algorithm::eltwise_logistic_use_dst_for_bwd};

}  // namespace

const OpVariant& sigmoid_onednn_variant() { return onednn::eltwise_variant<kSigmoid>(); }

}  // namespace emt
