// ONNX import: an ONNX model made of the ops the engine has becomes a graph file (TOML, one node
// per line, each line naming the ONNX node it came from) and a safetensors file of its weights
// ("<node>.weight", "<node>.bias", "<node>.gamma", ...), which `parse_graph_file` (or
// `parse_graph_text` on the text in memory) and `ParamStore::load_tensors` read like any
// hand-written graph and trained weights.
//
// Op mapping (default ONNX domain, float32 tensors, 2-D NCHW):
//   Conv -> conv2d (square kernel, equal strides, symmetric pads, no dilation; grouped, and
//     depthwise when group = input channels = output channels), ConvTranspose ->
//     conv_transpose2d (group 1), BatchNormalization -> batch_norm (inference: running
//     statistics), Relu -> relu, Clip(0, 6) -> relu6, Clip(0, +inf) -> relu, Sigmoid -> sigmoid,
//     Add of two equal shapes -> add, Gemm (transA = 0; alpha, beta and transB folded into the
//     weights) and MatMul by a constant [K, M] (plus an Add of a [M] constant) -> dense,
//     GlobalAveragePool -> global_avg_pool, Dropout (inference) -> dropout.
//   Folded away: a Flatten / Reshape to [N, C] right after GlobalAveragePool (the engine's pool is
//     already 2-D), Identity, Clip without bounds, and a Flatten / Reshape that keeps the shape.
//   Constants: initializers, Constant nodes and Transpose of a constant.
//
// Names: graph inputs and outputs keep their names (an input name breaking the engine's naming
// rules -- '.', a leading '@' -- is sanitised and the rename noted); nodes take their ONNX node
// name (else their output's name) with every character outside [A-Za-z0-9_-] turned into '_'.
// The ONNX batch axis (axis 0 of every input and output) is the engine's implicit batch axis.
//
// Every refusal is ONE exception naming the op type, the node name and its index in the ONNX
// graph; nothing is written unless the whole import (including parsing the generated graph,
// compiling it and loading the weights into it) succeeded.
#pragma once

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"

namespace emt {

// The model uses something the engine cannot express: an op, an attribute value, a data type,
// a rank or a broadcast. The message names the op type, the node name and the node index.
class OnnxUnsupportedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The file is not a well-formed model: it does not parse (truncated, corrupt), has no or a
// too old / unknown opset, reads a value nothing defines (a missing initializer), or its shapes
// contradict each other.
class OnnxFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OnnxImportOptions {
  // Names the model in messages and in the graph file's header ("model.onnx").
  std::string source = "ONNX model";
  // Graph inputs to take as constants: name -> a serialised onnx.TensorProto (the bytes of an
  // ONNX test data set's input_<k>.pb). ONNX's backend node tests feed weights (Conv's W, Gemm's
  // B and C, BatchNormalization's statistics, Clip's bounds...) as runtime inputs; the engine
  // needs them as parameters, so a caller binds them here and they become initializers. Which
  // inputs a model reads as weights: onnx_weight_inputs().
  std::map<std::string, std::string> constant_inputs;
  // The [graph] name; empty: the ONNX graph's name, sanitised ("imported" when it has none).
  std::string graph_name;
};

// One graph input or output: its ONNX name and shape (batch axis first, -1 when symbolic) and
// what the engine calls and computes for it (engine_shape includes the batch axis as in ONNX).
// They differ in shape only for a GlobalAveragePool output exposed as is: ONNX [N, C, 1, 1],
// the engine [N, C], the same values.
struct OnnxImportIo {
  std::string onnx_name, engine_name;
  Shape onnx_shape, engine_shape;
};

struct OnnxImport {
  std::string toml;       // the graph file
  std::string toml_name;  // what messages about the graph text call it: "<source> (imported graph)"
  SafetensorsFile weights;  // every parameter of the graph, named "<node>.<param>"
  std::vector<OnnxImportIo> inputs, outputs;  // in ONNX order
  std::vector<std::string> notes;     // lossless rewrites worth knowing (also in the TOML header)
  std::vector<std::string> onnx_ops;  // op type of every ONNX node, in order
};

// Converts and checks (the graph file parses, compiles for the model's batch size and takes the
// weights). Throws OnnxUnsupportedError / OnnxFormatError (see above).
OnnxImport import_onnx_bytes(const std::string& model_bytes, const OnnxImportOptions& opt = {});

// import_onnx_bytes on the file at `model`, then writes the graph file and the weights, each
// atomically and only after everything succeeded: on any failure neither file is created or
// changed. Returns what was written.
OnnxImport import_onnx(const std::filesystem::path& model, const std::filesystem::path& graph_out,
                       const std::filesystem::path& weights_out, OnnxImportOptions opt = {});

// The graph inputs (not initializers) that the model's nodes read as weights or settings --
// Conv/ConvTranspose W and B, BatchNormalization scale, B, mean and var, Gemm B and C, MatMul B,
// Clip min and max, Dropout ratio and training_mode, Reshape shape -- in graph input order.
// Throws OnnxFormatError when the bytes are not a model.
std::vector<std::string> onnx_weight_inputs(const std::string& model_bytes);

// A serialised onnx.TensorProto holding float32 data (the test data sets' input_<k>.pb and
// output_<k>.pb) as a named tensor with its ONNX dims. Throws OnnxUnsupportedError for another
// data type, OnnxFormatError when it does not parse or its data does not fill its dims.
NamedTensor onnx_float_tensor(const std::string& tensor_bytes, const std::string& what);

}  // namespace emt
