// graph2mobile's compiler: lowers a graph with trained weights to the mobile artifact
// (mobile/artifact.h). The graph is compiled for inference at batch 1 with the reference
// backend, which runs the inference passes (batch norms folded into the convolutions before
// them, relu/relu6 fused into them, dropout removed) but keeps the skip additions as steps of
// their own; the folds are computed here, once, so the phone never sees a batch norm.
#pragma once

#include "engine/dsl/parser.h"
#include "engine/io/safetensors.h"
#include "mobile/artifact.h"

namespace emt {

// Throws GraphError at the node's file and line for an op the mobile runtime does not run
// (a batch norm that follows no convolution, dropout in training mode, ...), and
// std::runtime_error naming the tensor when the weights do not fit the graph. The weights'
// metadata (input_size, norm_mean, norm_std, threshold) is carried into the artifact.
mobile::Artifact lower_to_mobile(const GraphFile& file, const SafetensorsFile& weights,
                                 const std::string& weights_source);

}  // namespace emt
