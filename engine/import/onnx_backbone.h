// An ONNX model (e.g. a MobileNetV1) as a source of pretrained weights: its convolutions, in
// topological order, mapped onto a graph's conv2d / dense nodes by structure, as
// import_tflite_backbone does for TFLite files (tflite.h, layer_mapping.h).
//
// The model is read with import_onnx_bytes (onnx/import.h: every op must be one the engine has),
// so its layers are the conv2d (ONNX Conv) and dense (Gemm, MatMul + Add) nodes of the imported
// graph, in ONNX node order. ConvTranspose is not a layer here: it ends nothing, it is skipped.
// The i-th layer goes to the i-th conv2d / dense node of our graph (program order: stem, ds1.dw,
// ds1.pw, ..., ds13.pw, then the heads). Weight shape, input channels, groups and stride must
// agree; the mapping stops at the first layer that does not fit (a note in the report says which
// and why; the rest of the graph keeps its initialisation), and a FIRST layer that does not fit
// is an error (LayerMappingError naming both nodes and both shapes; nothing is written).
//
// Batch norm: a BatchNormalization that alone reads a Conv is copied into the batch norm that
// alone reads our node (gamma, beta, running_mean, running_var; a conv bias our node cannot hold
// goes into the running mean, an epsilon that differs into the running variance). A Conv with
// the batch norm folded into its weights and bias (no BatchNormalization after it) follows the
// TFLite importer's convention: our batch norm becomes the identity plus beta = the bias.
#pragma once

#include <filesystem>
#include <vector>

#include "engine/import/layer_mapping.h"
#include "engine/import/tflite.h"
#include "engine/runtime/model.h"

namespace emt {

// The layers of an ONNX model (serialised onnx.ModelProto), in the engine's layout. `source`
// names the model in messages. Throws OnnxUnsupportedError / OnnxFormatError (onnx/import.h).
std::vector<SourceLayer> onnx_backbone_layers(const std::string& model_bytes,
                                              const std::string& source);

// Maps the model at `onnx` onto `model`'s parameters and writes those set, and only those, to
// out_safetensors (atomically, in the model's parameter order; metadata: graph, source,
// imported_layers): loaded as initial weights (load_initial_weights, `train.init_weights`) every
// other parameter keeps its initialisation. The model supplies the graph, parameter names and
// shapes; its values are not read. ImportReport::tflite holds the ONNX file's path.
ImportReport import_onnx_backbone(const std::filesystem::path& onnx, const Model& model,
                                  const std::filesystem::path& out_safetensors);

// The same from bytes, into tensors (those set, in the model's parameter order).
ImportReport import_onnx_backbone_tensors(const std::string& model_bytes, const std::string& source,
                                          const Model& model, std::vector<NamedTensor>& tensors);

}  // namespace emt
