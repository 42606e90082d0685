// The inference passes behind CompileOptions::fuse: batch-norm folding, conv + activation
// fusion and dropout removal, with the arithmetic the executor uses to derive folded params.
#pragma once

#include <span>
#include <string>

#include "engine/compiler/program.h"

namespace emt {

// Rewrites a compiled (unfused) program in place; see CompileOptions::fuse.
void fuse_for_inference(Program& program);

// Per output channel c of a weight whose channel axis is channel_axis, with
// s = gamma[c] / sqrt(var[c] + eps): folded_weight = weight * s and
// folded_bias[c] = (bias[c] - mean[c]) * s + beta[c] (bias null means zeros). Computed in
// double, so the fold adds one float rounding per value and no more.
void fold_batch_norm(const Shape& weight_shape, int channel_axis, double eps, const float* weight,
                     const float* bias, const float* gamma, const float* beta, const float* mean,
                     const float* var, float* folded_weight, float* folded_bias);

// "backbone.ds1.dw.conv + bn + relu": the step's node, then each absorbed node by its name
// relative to the block they share. Just the node's name when nothing was fused.
std::string fusion_label(const Step& step);

// Replaces step.op (the reference op for attrs) with backend's variant when that supports the
// attributes and shapes; otherwise records why not in step.dispatch_note. Shared by compile()
// and the fusion pass, which rebuilds the ops whose attributes it changes.
void choose_variant(Step& step, Backend backend, const Attrs& attrs,
                    std::span<const Shape> in_shapes);

}  // namespace emt
