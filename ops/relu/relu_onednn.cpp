#include "ops/relu/relu_onednn.h"

#include "ops/core/onednn_eltwise.h"
#include "ops/relu/relu.h"

namespace emt {
namespace {

// alpha is the slope below 0. The backward passes the gradient where src > 0, which gives
// relu_grad's 0 at the kink.
constexpr onednn::EltwiseSpec kRelu{relu_schema, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f};

}  // namespace

const OpVariant& relu_onednn_variant() { return onednn::eltwise_variant<kRelu>(); }

}  // namespace emt
