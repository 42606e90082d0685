#include "ops/relu6/relu6_onednn.h"

#include "ops/core/onednn_eltwise.h"
#include "ops/relu6/relu6.h"

namespace emt {
namespace {

// clip_v2 rather than clip: clip's backward passes the gradient at src == 6 (alpha < src <= beta,
// as bounded_relu's does in oneDNN 2.6), clip_v2's only strictly inside (alpha < src < beta),
// which is relu6_grad's 0 at both kinks.
constexpr onednn::EltwiseSpec kRelu6{relu6_schema, dnnl::algorithm::eltwise_clip_v2, 0.0f, 6.0f};

}  // namespace

const OpVariant& relu6_onednn_variant() { return onednn::eltwise_variant<kRelu6>(); }

}  // namespace emt
