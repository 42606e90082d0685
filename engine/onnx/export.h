// ONNX export of a model for inference (opset 13): the graph's inputs and public outputs keep
// their names, the batch axis is the symbolic dimension "N", batch norm uses the running
// statistics and dropout disappears. The model is checked (onnx::checker plus strict shape
// inference against the shapes our compiler inferred) before anything is written.
//
// Op mapping: conv2d -> Conv, conv_transpose2d -> ConvTranspose, batch_norm ->
// BatchNormalization, dense -> Gemm (transB = 1), global_avg_pool -> GlobalAveragePool +
// Flatten, relu -> Relu, relu6 -> Clip(0, 6), sigmoid -> Sigmoid, add -> Add, dropout -> nothing.
#pragma once

#include <filesystem>
#include <string>

#include "engine/dsl/config.h"
#include "engine/runtime/model.h"

namespace emt {

struct OnnxExportOptions {
  // Also export "<output>_logit" for every public output computed by a sigmoid (cls_logit,
  // seg_logit): the value before the sigmoid.
  bool include_logits = false;
  // When set, the input normalisation (data.norm_mean, data.norm_std) is recorded in the
  // metadata, so that a consumer can preprocess images as training did.
  const Config* config = nullptr;
};

// The checked model, serialised (an onnx::ModelProto). Throws GraphError at the node for an op
// with no ONNX mapping, std::runtime_error when the checker or shape inference rejects the model.
std::string export_onnx_bytes(const Model& model, const OnnxExportOptions& opt = {});

// export_onnx_bytes written atomically to `out`: on any failure nothing is written and a
// previous file at `out` survives.
void export_onnx(const Model& model, const std::filesystem::path& out,
                 const OnnxExportOptions& opt = {});

}  // namespace emt
