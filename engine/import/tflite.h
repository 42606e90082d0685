// TensorFlow Lite models (.tflite: FlatBuffers with file identifier "TFL3") as a source of
// pretrained weights: a reader of our own (no flatbuffers library) for the parts an importer
// needs, and the import of a MobileNet-style file's convolutions into a graph's parameters.
//
// The reader follows the FlatBuffers binary format directly: a table starts with a signed
// offset back to its vtable, whose 16-bit entries give each field's position in the table (0:
// absent, the schema default applies); tables, vectors and strings are reached through
// unsigned 32-bit offsets relative to where they are stored. Every offset, vtable and length is
// checked against the file size before it is followed, so a truncated or corrupt file gives a
// TfliteError naming the file, the structure and the byte position, never a read out of bounds.
// Field numbers are those of tensorflow/lite/schema/schema.fbs (stable: the schema only appends).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/runtime/model.h"
#include "ops/core/tensor.h"

namespace emt {

// "<file>: <what is wrong>"; for unreadable, truncated, corrupt and unsupported files alike.
class TfliteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// schema.fbs TensorType.
enum class TfliteType : int8_t {
  kFloat32 = 0,
  kFloat16 = 1,
  kInt32 = 2,
  kUint8 = 3,
  kInt64 = 4,
  kString = 5,
  kBool = 6,
  kInt16 = 7,
  kComplex64 = 8,
  kInt8 = 9,
  kFloat64 = 10,
};

// "UINT8", or "TYPE_<n>" for a value this reader does not name.
std::string tflite_type_name(int type);

// schema.fbs BuiltinOperator codes this importer looks at.
namespace tflite_op {
inline constexpr int kAveragePool2d = 1;
inline constexpr int kConv2d = 3;
inline constexpr int kDepthwiseConv2d = 4;
inline constexpr int kFullyConnected = 9;
inline constexpr int kMaxPool2d = 17;
inline constexpr int kReshape = 22;
inline constexpr int kSoftmax = 25;
inline constexpr int kCustom = 32;
inline constexpr int kQuantize = 114;
}  // namespace tflite_op

// "CONV_2D", or "BUILTIN_<n>" for a code this reader does not name.
std::string tflite_op_name(int builtin_code);

enum class TflitePadding { kSame = 0, kValid = 1 };
enum class TfliteActivation {
  kNone = 0,
  kRelu = 1,
  kReluN1To1 = 2,
  kRelu6 = 3,
  kTanh = 4,
  kSignBit = 5
};
const char* tflite_activation_name(TfliteActivation activation);

// real = scale * (q - zero_point); one (scale, zero point) per tensor, or per channel along
// quantized_dimension.
struct TfliteQuantization {
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  int32_t quantized_dimension = 0;
};

struct TfliteTensor {
  std::string name;
  std::vector<int32_t> shape;
  int type = 0;         // TfliteType
  uint32_t buffer = 0;  // index into TfliteModel::buffers; 0 is the empty sentinel
  TfliteQuantization quantization;
};

struct TfliteOperator {
  int builtin = -1;  // BuiltinOperator (max of the deprecated byte and the int32 field)
  std::string custom_code;
  std::vector<int32_t> inputs, outputs;  // tensor indices; -1 marks an absent optional input
  // Options of CONV_2D, DEPTHWISE_CONV_2D and the 2-D pools; the schema defaults otherwise.
  TflitePadding padding = TflitePadding::kSame;
  int32_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int32_t depth_multiplier = 1;
  int32_t filter_h = 0, filter_w = 0;  // pools
  // Also FULLY_CONNECTED's.
  TfliteActivation activation = TfliteActivation::kNone;

  std::string name() const;  // tflite_op_name(builtin), or CUSTOM(<code>)
};

// Subgraph 0 of a model (the main one), with the model's buffers.
struct TfliteModel {
  uint32_t version = 0;  // schema version, 3 for TFL3 files
  std::string description;
  size_t subgraph_count = 0;
  std::vector<TfliteTensor> tensors;
  std::vector<TfliteOperator> operators;  // in execution order
  std::vector<int32_t> inputs, outputs;
  std::vector<std::vector<uint8_t>> buffers;
  size_t file_bytes = 0;  // the parsed file's size, which bounds what decoding may allocate
};

// `source` names the bytes in errors (the file path). Throws TfliteError.
TfliteModel parse_tflite(std::span<const uint8_t> bytes, const std::string& source);
TfliteModel read_tflite(const std::filesystem::path& path);

// A constant tensor's values as float, in its stored (TFLite) layout: float32 as stored; uint8,
// int8 and int32 as scale * (q - zero_point) with the tensor's per-tensor or per-channel
// quantisation. Throws TfliteError when the tensor has no data, data of the wrong size, no
// quantisation where it needs one, or an unsupported type.
std::vector<float> tflite_dequantize(const TfliteModel& model, int tensor,
                                     const std::string& source);

// One convolution (or fully connected layer) of the file, with its weights dequantised and
// moved to the engine's layout.
struct TfliteConv {
  int op_index = -1;                   // into TfliteModel::operators
  int builtin = -1;                    // CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED
  std::string weight_name, bias_name;  // the file's tensor names; bias_name empty without bias
  // conv2d's [out, in / groups, kh, kw] (OHWI and depthwise 1HWC transposed); a fully connected
  // layer's [out, in] as dense has it.
  Shape weight_shape;
  std::vector<float> weight;
  std::vector<float> bias;           // [out], empty when the layer has no bias
  int64_t groups = 1;                // depthwise: the input channels
  std::vector<int32_t> input_shape;  // NHWC as the file has it
  TflitePadding padding = TflitePadding::kSame;
  int32_t stride_h = 1, stride_w = 1;
  TfliteActivation activation = TfliteActivation::kNone;
  // Bias scale the file stores vs input scale * weight scale (per channel), largest relative
  // difference; 0 when they agree or either is missing.
  double bias_scale_mismatch = 0.0;
};

// Every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED of subgraph 0, in execution order.
std::vector<TfliteConv> tflite_convolutions(const TfliteModel& model, const std::string& source);

// What import_tflite_backbone wrote where.
struct ImportedTensor {
  std::string param;   // "backbone.ds1.dw.conv.weight"
  std::string source;  // the file's tensor, or how the value was set ("identity: 1")
  Shape shape;
};

struct ImportReport {
  std::string tflite;                    // the file
  std::string graph;                     // the graph's name
  int64_t layers = 0;                    // convolutions / fully connected layers imported
  std::vector<ImportedTensor> matched;   // in the order they were set (layer by layer)
  std::vector<std::string> initialised;  // params the file did not provide, in graph order
  // Where the graph computes something other than the file around an imported layer (padding,
  // activation), and the input normalisation the file implies. Empty when they agree.
  std::vector<std::string> notes;
  // The input normalisation the file's input quantisation implies, as data.norm_mean and
  // data.norm_std on pixel / 255 (zero_point / 255 and 1 / (255 * scale)); 0 when the input is
  // not quantised.
  double norm_mean = 0.0, norm_std = 0.0;

  std::string summary() const;  // human-readable, one line per tensor
};

// Maps the file's layers onto the graph by structure: the i-th convolution (CONV_2D /
// DEPTHWISE_CONV_2D / FULLY_CONNECTED, in execution order) onto the i-th conv2d or dense node
// of the graph (in file order: stem, ds1.dw, ds1.pw, ..., then the heads). A file with fewer
// layers than the graph leaves the rest at their initialisation; shapes, depthwise-ness and
// strides must agree, else TfliteError names both layers.
//
// The file's weights have batch norm folded in (w' = w * gamma / sigma, b' = beta - mean *
// gamma / sigma). They are written as the conv weight and, for a conv without bias whose only
// reader is a batch_norm, into that batch norm made the identity plus the folded bias:
// gamma = 1, beta = b', running_mean = 0, running_var = 1 - eps, so that in eval
// BN(x) = (x - 0) / sqrt(1 - eps + eps) + b' = x + b' (the scale rounds to 1.0f in float32, so
// eval and inference fusion reproduce the file's layer). A conv (or dense) with its own bias gets
// b' there instead. The choice keeps the graphs' bias-free convolutions and their parameter
// names; its cost is in training mode, where batch norm normalises with batch statistics: the
// first steps of fine-tuning see unit-variance activations where the file had its own scale.
//
// Writes the tensors set from the file, and only those, to out_safetensors (atomically, in the
// model's parameter order), with metadata naming the source and the input normalisation the
// file implies: loaded as initial weights (load_initial_weights, `train.init_weights`), every
// other parameter keeps the initialisation of the run that loads them. The model supplies the
// graph, parameter names and shapes; its values are not read.
ImportReport import_tflite_backbone(const std::filesystem::path& tflite_path, const Model& model,
                                    const std::filesystem::path& out_safetensors);

// The same from a parsed file, into tensors (those set, in the model's parameter order);
// `source` names the file in messages.
ImportReport import_tflite_tensors(const TfliteModel& file, const std::string& source,
                                   const Model& model, std::vector<NamedTensor>& tensors);

}  // namespace emt
