// The TFLite reader: FlatBuffers decoded by hand, every position checked before it is read.
#include "engine/import/tflite.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <utility>

#include "ops/core/checked_size.h"

namespace emt {
namespace {

// FlatBuffers store little-endian scalars; on a little-endian host memcpy gives the value.
static_assert(std::endian::native == std::endian::little,
              "the TFLite reader copies little-endian scalars as they are in memory");

// The whole file with its name, for bounds-checked reads.
class Bytes {
 public:
  Bytes(std::span<const uint8_t> data, const std::string& source) : data_(data), source_(source) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw TfliteError(source_ + ": " + what);
  }

  uint64_t size() const { return data_.size(); }

  // Tables and vectors may be shared (every tensor of a file can name one table), so what is
  // copied out is counted: at most twice the file plus kCopySlack, whatever the sharing.
  void charge(uint64_t bytes, const char* what) const {
    copied_ += bytes;
    if (copied_ > 2 * data_.size() + kCopySlack)
      fail(std::string(what) + ": reading the file would copy out over " + std::to_string(copied_) +
           " bytes, more than twice its " + std::to_string(data_.size()) +
           " bytes: its tables or vectors are shared (corrupt)");
  }

  // Throws unless [pos, pos + len) lies inside the file.
  void need(uint64_t pos, uint64_t len, const char* what) const {
    if (pos > data_.size() || len > data_.size() - pos)
      fail(std::string(what) + " at byte " + std::to_string(pos) + " (" + std::to_string(len) +
           " bytes) runs past the end of the file (" + std::to_string(data_.size()) +
           " bytes): truncated or corrupt");
  }

  template <class T>
  T read(uint64_t pos, const char* what) const {
    need(pos, sizeof(T), what);
    T value;
    std::memcpy(&value, data_.data() + pos, sizeof(T));
    return value;
  }

  const uint8_t* at(uint64_t pos) const { return data_.data() + pos; }

 private:
  static constexpr uint64_t kCopySlack = uint64_t{1} << 20;
  std::span<const uint8_t> data_;
  const std::string& source_;
  mutable uint64_t copied_ = 0;
};

// A vector's elements: count of them from `data` on, already checked to lie in the file.
struct Vec {
  uint64_t data = 0;
  uint32_t count = 0;
};

Vec read_vec(const Bytes& b, uint64_t pos, uint64_t element_size, const char* what) {
  const uint32_t count = b.read<uint32_t>(pos, what);
  b.need(pos + 4, uint64_t{count} * element_size, what);
  return {pos + 4, count};
}

// Follows the unsigned 32-bit offset stored at pos (relative to pos).
uint64_t follow(const Bytes& b, uint64_t pos, const char* what) {
  const uint32_t rel = b.read<uint32_t>(pos, what);
  if (rel == 0) b.fail(std::string(what) + " at byte " + std::to_string(pos) + " points at itself");
  const uint64_t target = pos + rel;
  b.need(target, 4, what);
  return target;
}

// One table: its position and its vtable, both checked.
class Table {
 public:
  Table(const Bytes& b, uint64_t pos, const char* what) : b_(&b), pos_(pos), what_(what) {
    const int32_t back = b.read<int32_t>(pos, what);
    const int64_t vtable = static_cast<int64_t>(pos) - back;
    if (vtable < 0 || static_cast<uint64_t>(vtable) >= b.size())
      b.fail(std::string(what) + " table at byte " + std::to_string(pos) +
             " has its vtable outside the file: corrupt");
    vtable_ = static_cast<uint64_t>(vtable);
    vtable_size_ = b.read<uint16_t>(vtable_, what);
    table_size_ = b.read<uint16_t>(vtable_ + 2, what);
    if (vtable_size_ < 4 || vtable_size_ % 2 != 0 || table_size_ < 4)
      b.fail(std::string(what) + " table at byte " + std::to_string(pos) +
             " has a malformed vtable");
    b.need(vtable_, vtable_size_, what);
    b.need(pos_, table_size_, what);
  }

  // Where field `index` (of `size` bytes) is stored; 0 when absent.
  uint64_t field(int index, uint64_t size) const {
    const uint64_t entry = 4 + 2 * static_cast<uint64_t>(index);
    if (entry + 2 > vtable_size_) return 0;
    const uint16_t offset = b_->read<uint16_t>(vtable_ + entry, what_);
    if (offset == 0) return 0;
    if (offset + size > table_size_)
      b_->fail(std::string(what_) + " table at byte " + std::to_string(pos_) + ": field " +
               std::to_string(index) + " lies outside the table: corrupt");
    return pos_ + offset;
  }

  template <class T>
  T scalar(int index, T fallback) const {
    const uint64_t p = field(index, sizeof(T));
    return p ? b_->read<T>(p, what_) : fallback;
  }

  std::optional<Table> table(int index, const char* what) const {
    const uint64_t p = field(index, 4);
    if (!p) return std::nullopt;
    return Table(*b_, follow(*b_, p, what), what);
  }

  Vec vec(int index, uint64_t element_size, const char* what) const {
    const uint64_t p = field(index, 4);
    if (!p) return {};
    return read_vec(*b_, follow(*b_, p, what), element_size, what);
  }

  std::string str(int index, const char* what) const {
    const Vec v = vec(index, 1, what);
    b_->charge(v.count, what);
    return std::string(reinterpret_cast<const char*>(b_->at(v.data)), v.count);
  }

  template <class T>
  std::vector<T> scalars(int index, const char* what) const {
    const Vec v = vec(index, sizeof(T), what);
    b_->charge(uint64_t{v.count} * sizeof(T), what);
    std::vector<T> out(v.count);
    if (v.count) std::memcpy(out.data(), b_->at(v.data), v.count * sizeof(T));
    return out;
  }

  // The i-th table of a vector of tables.
  static Table element(const Bytes& b, const Vec& v, uint32_t i, const char* what) {
    return Table(b, follow(b, v.data + 4 * uint64_t{i}, what), what);
  }

 private:
  const Bytes* b_;
  uint64_t pos_;
  const char* what_;
  uint64_t vtable_ = 0;
  uint16_t vtable_size_ = 0, table_size_ = 0;
};

// schema.fbs field numbers.
namespace field {
// Model
constexpr int kModelVersion = 0, kModelOperatorCodes = 1, kModelSubgraphs = 2,
              kModelDescription = 3, kModelBuffers = 4;
// OperatorCode
constexpr int kCodeDeprecatedBuiltin = 0, kCodeCustom = 1, kCodeBuiltin = 3;
// SubGraph
constexpr int kGraphTensors = 0, kGraphInputs = 1, kGraphOutputs = 2, kGraphOperators = 3;
// Tensor
constexpr int kTensorShape = 0, kTensorType = 1, kTensorBuffer = 2, kTensorName = 3,
              kTensorQuantization = 4;
// QuantizationParameters
constexpr int kQuantScale = 2, kQuantZeroPoint = 3, kQuantDetailsType = 4, kQuantDimension = 6;
// Operator
constexpr int kOpCodeIndex = 0, kOpInputs = 1, kOpOutputs = 2, kOpOptionsType = 3, kOpOptions = 4;
// Buffer
constexpr int kBufferData = 0, kBufferOffset = 1, kBufferSize = 2;
}  // namespace field

// BuiltinOptions union members.
constexpr uint8_t kConv2DOptions = 1, kDepthwiseConv2DOptions = 2, kPool2DOptions = 5,
                  kFullyConnectedOptions = 8;

TflitePadding padding_of(const Bytes& b, int8_t v, const std::string& op) {
  if (v != 0 && v != 1)
    b.fail(op + ": padding " + std::to_string(v) + " is neither SAME nor VALID");
  return static_cast<TflitePadding>(v);
}

TfliteActivation activation_of(const Bytes& b, int8_t v, const std::string& op) {
  if (v < 0 || v > 5)
    b.fail(op + ": fused activation " + std::to_string(v) + " is not a known activation");
  return static_cast<TfliteActivation>(v);
}

void read_options(const Bytes& b, const Table& t, TfliteOperator& op, const std::string& where) {
  const uint8_t type = t.scalar<uint8_t>(field::kOpOptionsType, 0);
  const std::optional<Table> options = t.table(field::kOpOptions, "operator options");
  uint8_t expected = 0;
  switch (op.builtin) {
    case tflite_op::kConv2d:
      expected = kConv2DOptions;
      break;
    case tflite_op::kDepthwiseConv2d:
      expected = kDepthwiseConv2DOptions;
      break;
    case tflite_op::kAveragePool2d:
    case tflite_op::kMaxPool2d:
      expected = kPool2DOptions;
      break;
    case tflite_op::kFullyConnected:
      expected = kFullyConnectedOptions;
      break;
    default:
      return;  // options this importer does not use
  }
  // Convolutions and pools need their strides (schema default 0): no options is an error too.
  if (!options) {
    if (op.builtin == tflite_op::kFullyConnected) return;
    b.fail(where + " has no options (strides, padding)");
  }
  if (type != expected)
    b.fail(where + " has options of union type " + std::to_string(type) + ", expected " +
           std::to_string(expected));
  const Table& o = *options;
  switch (op.builtin) {
    case tflite_op::kConv2d:
      op.padding = padding_of(b, o.scalar<int8_t>(0, 0), where);
      op.stride_w = o.scalar<int32_t>(1, 0);
      op.stride_h = o.scalar<int32_t>(2, 0);
      op.activation = activation_of(b, o.scalar<int8_t>(3, 0), where);
      op.dilation_w = o.scalar<int32_t>(4, 1);
      op.dilation_h = o.scalar<int32_t>(5, 1);
      break;
    case tflite_op::kDepthwiseConv2d:
      op.padding = padding_of(b, o.scalar<int8_t>(0, 0), where);
      op.stride_w = o.scalar<int32_t>(1, 0);
      op.stride_h = o.scalar<int32_t>(2, 0);
      op.depth_multiplier = o.scalar<int32_t>(3, 0);
      op.activation = activation_of(b, o.scalar<int8_t>(4, 0), where);
      op.dilation_w = o.scalar<int32_t>(5, 1);
      op.dilation_h = o.scalar<int32_t>(6, 1);
      break;
    case tflite_op::kAveragePool2d:
    case tflite_op::kMaxPool2d:
      op.padding = padding_of(b, o.scalar<int8_t>(0, 0), where);
      op.stride_w = o.scalar<int32_t>(1, 0);
      op.stride_h = o.scalar<int32_t>(2, 0);
      op.filter_w = o.scalar<int32_t>(3, 0);
      op.filter_h = o.scalar<int32_t>(4, 0);
      op.activation = activation_of(b, o.scalar<int8_t>(5, 0), where);
      break;
    case tflite_op::kFullyConnected:
      op.activation = activation_of(b, o.scalar<int8_t>(0, 0), where);
      break;
    default:
      break;
  }
}

std::vector<int32_t> tensor_indices(const Bytes& b, const Table& t, int index, const char* what,
                                    size_t tensor_count, const std::string& where,
                                    bool allow_absent) {
  std::vector<int32_t> ids = t.scalars<int32_t>(index, what);
  for (int32_t id : ids) {
    if (id == -1 && allow_absent) continue;
    if (id < 0 || static_cast<size_t>(id) >= tensor_count)
      b.fail(where + ": " + what + " names tensor " + std::to_string(id) + " of " +
             std::to_string(tensor_count));
  }
  return ids;
}

int64_t element_size(int type) {
  switch (static_cast<TfliteType>(type)) {
    case TfliteType::kFloat32:
    case TfliteType::kInt32:
      return 4;
    case TfliteType::kUint8:
    case TfliteType::kInt8:
      return 1;
    default:
      return 0;  // not dequantised here
  }
}

std::string dims_str(const std::vector<int32_t>& shape) {
  return shape_str(Shape(shape.begin(), shape.end()));
}

// Number of elements, or -1 when it overflows or a dimension is negative.
int64_t element_count(const std::vector<int32_t>& shape) {
  return product_if_representable(shape).value_or(-1);
}

// The tensor's stored values as float, with one scale (and zero point) per channel of axis
// `axis` (or per tensor when scales has one entry).
std::vector<float> decode(const TfliteModel& model, const TfliteTensor& t,
                          const std::vector<double>& scales, const std::vector<int64_t>& zeros,
                          int axis, const std::string& source) {
  const auto fail = [&](const std::string& what) {
    throw TfliteError(source + ": tensor '" + t.name + "' " + what);
  };
  const int64_t size = element_size(t.type);
  if (size == 0) fail("has type " + tflite_type_name(t.type) + ", which is not imported");
  const int64_t n = element_count(t.shape);
  if (n < 0) fail("has an invalid shape " + dims_str(t.shape));
  if (t.buffer == 0 || t.buffer >= model.buffers.size() || model.buffers[t.buffer].empty())
    fail("has no data: it is not a constant");
  const std::vector<uint8_t>& data = model.buffers[t.buffer];
  if (static_cast<uint64_t>(n) > data.size() ||
      static_cast<uint64_t>(n) * static_cast<uint64_t>(size) != data.size())
    fail("of shape " + dims_str(t.shape) + " and type " + tflite_type_name(t.type) + " (" +
         std::to_string(n) + " values of " + std::to_string(size) + " bytes) does not fit its " +
         std::to_string(data.size()) + "-byte buffer");
  std::vector<float> out(static_cast<size_t>(n));
  if (t.type == static_cast<int>(TfliteType::kFloat32)) {
    if (n) std::memcpy(out.data(), data.data(), data.size());
    return out;
  }
  if (scales.empty()) fail("of type " + tflite_type_name(t.type) + " has no quantisation scale");
  int64_t channels = 1, inner = 1;
  if (scales.size() > 1) {
    if (axis < 0 || static_cast<size_t>(axis) >= t.shape.size() ||
        static_cast<size_t>(t.shape[axis]) != scales.size())
      fail("has " + std::to_string(scales.size()) + " scales along axis " + std::to_string(axis) +
           " of shape " + dims_str(t.shape));
    channels = t.shape[axis];
    for (size_t i = axis + 1; i < t.shape.size(); ++i) inner *= t.shape[i];
  }
  if (zeros.size() > 1 && zeros.size() != scales.size())
    fail("has " + std::to_string(zeros.size()) + " zero points for " +
         std::to_string(scales.size()) + " scales");
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = channels > 1 ? static_cast<size_t>((i / inner) % channels) : 0;
    const double scale = scales[c];
    const int64_t zero = zeros.empty() ? 0 : zeros[zeros.size() > 1 ? c : 0];
    int64_t q = 0;
    switch (static_cast<TfliteType>(t.type)) {
      case TfliteType::kUint8:
        q = data[i];
        break;
      case TfliteType::kInt8:
        q = static_cast<int8_t>(data[i]);
        break;
      default: {  // int32
        int32_t v;
        std::memcpy(&v, data.data() + 4 * i, 4);
        q = v;
      }
    }
    out[i] = static_cast<float>(scale * static_cast<double>(q - zero));
  }
  return out;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

const TfliteTensor& tensor_at(const TfliteModel& model, int32_t index, const std::string& where,
                              const std::string& source) {
  if (index < 0 || static_cast<size_t>(index) >= model.tensors.size())
    throw TfliteError(source + ": " + where + " has no tensor " + std::to_string(index));
  return model.tensors[index];
}

}  // namespace

std::string tflite_type_name(int type) {
  static const char* const names[] = {"FLOAT32",   "FLOAT16", "INT32",  "UINT8",
                                      "INT64",     "STRING",  "BOOL",   "INT16",
                                      "COMPLEX64", "INT8",    "FLOAT64"};
  if (type >= 0 && type < static_cast<int>(std::size(names))) return names[type];
  return "TYPE_" + std::to_string(type);
}

std::string tflite_op_name(int code) {
  switch (code) {
    case 0:
      return "ADD";
    case tflite_op::kAveragePool2d:
      return "AVERAGE_POOL_2D";
    case 2:
      return "CONCATENATION";
    case tflite_op::kConv2d:
      return "CONV_2D";
    case tflite_op::kDepthwiseConv2d:
      return "DEPTHWISE_CONV_2D";
    case 6:
      return "DEQUANTIZE";
    case tflite_op::kFullyConnected:
      return "FULLY_CONNECTED";
    case 14:
      return "LOGISTIC";
    case tflite_op::kMaxPool2d:
      return "MAX_POOL_2D";
    case 18:
      return "MUL";
    case 19:
      return "RELU";
    case 21:
      return "RELU6";
    case tflite_op::kReshape:
      return "RESHAPE";
    case tflite_op::kSoftmax:
      return "SOFTMAX";
    case tflite_op::kCustom:
      return "CUSTOM";
    case 34:
      return "PAD";
    case 40:
      return "MEAN";
    case tflite_op::kQuantize:
      return "QUANTIZE";
    default:
      return "BUILTIN_" + std::to_string(code);
  }
}

const char* tflite_activation_name(TfliteActivation activation) {
  switch (activation) {
    case TfliteActivation::kNone:
      return "NONE";
    case TfliteActivation::kRelu:
      return "RELU";
    case TfliteActivation::kReluN1To1:
      return "RELU_N1_TO_1";
    case TfliteActivation::kRelu6:
      return "RELU6";
    case TfliteActivation::kTanh:
      return "TANH";
    case TfliteActivation::kSignBit:
      return "SIGN_BIT";
  }
  return "?";
}

std::string TfliteOperator::name() const {
  if (builtin == tflite_op::kCustom) return "CUSTOM(" + custom_code + ")";
  return tflite_op_name(builtin);
}

TfliteModel parse_tflite(std::span<const uint8_t> data, const std::string& source) {
  const Bytes b(data, source);
  if (data.size() < 8)
    b.fail("too short for a TFLite model (" + std::to_string(data.size()) + " bytes)");
  const std::string identifier(reinterpret_cast<const char*>(data.data()) + 4, 4);
  if (identifier != "TFL3") {
    std::string shown;
    for (char c : identifier) shown += (c >= 32 && c < 127) ? c : '?';
    b.fail("not a TFLite model: the FlatBuffers file identifier is '" + shown +
           "', expected 'TFL3'");
  }
  const Table root(b, follow(b, 0, "root table offset"), "Model");

  TfliteModel model;
  model.file_bytes = data.size();
  model.version = root.scalar<uint32_t>(field::kModelVersion, 0);
  model.description = root.str(field::kModelDescription, "Model.description");

  struct Code {
    int builtin;
    std::string custom;
  };
  std::vector<Code> codes;
  const Vec code_vec = root.vec(field::kModelOperatorCodes, 4, "Model.operator_codes");
  for (uint32_t i = 0; i < code_vec.count; ++i) {
    const Table c = Table::element(b, code_vec, i, "OperatorCode");
    b.charge(sizeof(Code), "OperatorCode");
    // Codes past 127 live in the int32 field, with the old byte field saturated at 127.
    const int deprecated = c.scalar<int8_t>(field::kCodeDeprecatedBuiltin, 0);
    const int builtin = c.scalar<int32_t>(field::kCodeBuiltin, 0);
    codes.push_back(
        {std::max(deprecated, builtin), c.str(field::kCodeCustom, "OperatorCode.custom_code")});
  }

  // No reserve() from counts the file states: a corrupt count must fail on its first bad
  // element, not allocate first.
  const Vec buffer_vec = root.vec(field::kModelBuffers, 4, "Model.buffers");
  for (uint32_t i = 0; i < buffer_vec.count; ++i) {
    const Table buffer = Table::element(b, buffer_vec, i, "Buffer");
    b.charge(sizeof(std::vector<uint8_t>), "Buffer");
    model.buffers.emplace_back();
    const Vec bytes = buffer.vec(field::kBufferData, 1, "Buffer.data");
    b.charge(bytes.count, "Buffer.data");
    if (bytes.count) {
      model.buffers[i].assign(b.at(bytes.data), b.at(bytes.data) + bytes.count);
      continue;
    }
    // Models over 2 GB keep buffers after the FlatBuffer: offset and size from the file start.
    const uint64_t offset = buffer.scalar<uint64_t>(field::kBufferOffset, 0);
    const uint64_t size = buffer.scalar<uint64_t>(field::kBufferSize, 0);
    if (offset > 1) {
      b.need(offset, size, "Buffer data outside the FlatBuffer");
      b.charge(size, "Buffer data outside the FlatBuffer");
      model.buffers[i].assign(b.at(offset), b.at(offset) + size);
    }
  }

  const Vec graphs = root.vec(field::kModelSubgraphs, 4, "Model.subgraphs");
  model.subgraph_count = graphs.count;
  if (graphs.count == 0) b.fail("the model has no subgraph");
  const Table graph = Table::element(b, graphs, 0, "SubGraph");

  const Vec tensor_vec = graph.vec(field::kGraphTensors, 4, "SubGraph.tensors");
  for (uint32_t i = 0; i < tensor_vec.count; ++i) {
    const Table t = Table::element(b, tensor_vec, i, "Tensor");
    b.charge(sizeof(TfliteTensor), "Tensor");
    TfliteTensor tensor;
    tensor.name = t.str(field::kTensorName, "Tensor.name");
    const std::string where = "tensor " + std::to_string(i) + " '" + tensor.name + "'";
    tensor.shape = t.scalars<int32_t>(field::kTensorShape, "Tensor.shape");
    for (int32_t d : tensor.shape)
      if (d < 0) b.fail(where + " has a negative dimension in " + dims_str(tensor.shape));
    tensor.type = t.scalar<int8_t>(field::kTensorType, 0);
    tensor.buffer = t.scalar<uint32_t>(field::kTensorBuffer, 0);
    if (tensor.buffer >= model.buffers.size())
      b.fail(where + " names buffer " + std::to_string(tensor.buffer) + " of " +
             std::to_string(model.buffers.size()));
    if (const std::optional<Table> q =
            t.table(field::kTensorQuantization, "QuantizationParameters")) {
      if (q->scalar<uint8_t>(field::kQuantDetailsType, 0) != 0)
        b.fail(where + " uses custom quantisation details, which are not supported");
      tensor.quantization.scale =
          q->scalars<float>(field::kQuantScale, "QuantizationParameters.scale");
      tensor.quantization.zero_point =
          q->scalars<int64_t>(field::kQuantZeroPoint, "QuantizationParameters.zero_point");
      tensor.quantization.quantized_dimension = q->scalar<int32_t>(field::kQuantDimension, 0);
    }
    model.tensors.push_back(std::move(tensor));
  }

  const size_t n_tensors = model.tensors.size();
  model.inputs = tensor_indices(b, graph, field::kGraphInputs, "SubGraph.inputs", n_tensors,
                                "subgraph 0", false);
  model.outputs = tensor_indices(b, graph, field::kGraphOutputs, "SubGraph.outputs", n_tensors,
                                 "subgraph 0", false);

  const Vec op_vec = graph.vec(field::kGraphOperators, 4, "SubGraph.operators");
  for (uint32_t i = 0; i < op_vec.count; ++i) {
    const Table t = Table::element(b, op_vec, i, "Operator");
    b.charge(sizeof(TfliteOperator), "Operator");
    TfliteOperator op;
    const uint32_t code = t.scalar<uint32_t>(field::kOpCodeIndex, 0);
    if (code >= codes.size())
      b.fail("operator " + std::to_string(i) + " names operator code " + std::to_string(code) +
             " of " + std::to_string(codes.size()));
    op.builtin = codes[code].builtin;
    b.charge(codes[code].custom.size(), "OperatorCode.custom_code");
    op.custom_code = codes[code].custom;
    const std::string where = "operator " + std::to_string(i) + " (" + op.name() + ")";
    op.inputs = tensor_indices(b, t, field::kOpInputs, "Operator.inputs", n_tensors, where, true);
    op.outputs =
        tensor_indices(b, t, field::kOpOutputs, "Operator.outputs", n_tensors, where, false);
    read_options(b, t, op, where);
    model.operators.push_back(std::move(op));
  }
  return model;
}

TfliteModel read_tflite(const std::filesystem::path& path) {
  // A directory makes the stream throw a message without the path, a FIFO blocks the open.
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw TfliteError(path.string() + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TfliteError(path.string() + ": cannot open the file");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (in.bad()) throw TfliteError(path.string() + ": read error");
  return parse_tflite(bytes, path.string());
}

std::vector<float> tflite_dequantize(const TfliteModel& model, int tensor,
                                     const std::string& source) {
  const TfliteTensor& t = tensor_at(model, tensor, "the model", source);
  return decode(model, t, widen(t.quantization.scale), t.quantization.zero_point,
                t.quantization.quantized_dimension, source);
}

std::vector<TfliteConv> tflite_convolutions(const TfliteModel& model, const std::string& source) {
  std::vector<TfliteConv> convs;
  // Tensors may share a buffer, so operators could ask for any multiple of the file; a real
  // model decodes at most one value per byte (int8 weights), and no more is allocated.
  int64_t decoded = 0;
  const auto budget = [&](const TfliteTensor& t, const std::string& where) {
    decoded = checked_add(decoded, std::max<int64_t>(element_count(t.shape), 0), "decoded size");
    if (static_cast<uint64_t>(decoded) > model.file_bytes)
      throw TfliteError(source + ": " + where + ": the convolutions' weights would decode to " +
                        std::to_string(decoded) + " values or more, over one per byte of the " +
                        std::to_string(model.file_bytes) + "-byte file (tensors share buffers)");
  };
  for (size_t i = 0; i < model.operators.size(); ++i) {
    const TfliteOperator& op = model.operators[i];
    const bool conv = op.builtin == tflite_op::kConv2d;
    const bool depthwise = op.builtin == tflite_op::kDepthwiseConv2d;
    const bool dense = op.builtin == tflite_op::kFullyConnected;
    if (!conv && !depthwise && !dense) continue;
    const std::string where = "operator " + std::to_string(i) + " (" + op.name() + ")";
    const auto fail = [&](const std::string& what) {
      throw TfliteError(source + ": " + where + " " + what);
    };
    if (op.inputs.size() < 2 || op.inputs[0] < 0 || op.inputs[1] < 0)
      fail("needs an input and a weight tensor");
    const TfliteTensor& input = tensor_at(model, op.inputs[0], where, source);
    const TfliteTensor& weight = tensor_at(model, op.inputs[1], where, source);
    const int32_t bias_index = op.inputs.size() > 2 ? op.inputs[2] : -1;

    TfliteConv c;
    c.op_index = static_cast<int>(i);
    c.builtin = op.builtin;
    c.weight_name = weight.name;
    c.input_shape = input.shape;
    c.padding = op.padding;
    c.stride_h = op.stride_h;
    c.stride_w = op.stride_w;
    c.activation = op.activation;
    const std::vector<int32_t>& ws = weight.shape;
    if (dense) {
      if (ws.size() != 2) fail("has weight shape " + dims_str(ws) + ", expected [out, in]");
      c.weight_shape = {ws[0], ws[1]};
    } else {
      if (op.dilation_h != 1 || op.dilation_w != 1)
        fail("is dilated (" + std::to_string(op.dilation_h) + "x" + std::to_string(op.dilation_w) +
             "), which conv2d does not support");
      if (op.stride_h < 1 || op.stride_w < 1)
        fail("has strides " + std::to_string(op.stride_h) + "x" + std::to_string(op.stride_w));
      if (input.shape.size() != 4) fail("has input shape " + dims_str(input.shape) + ", not NHWC");
      if (ws.size() != 4) fail("has weight shape " + dims_str(ws) + ", expected rank 4");
      const int64_t in_channels = input.shape[3];
      if (conv) {  // OHWI -> OIHW
        if (ws[3] == 0 || in_channels % ws[3] != 0)
          fail("has weight shape " + dims_str(ws) + " for input " + dims_str(input.shape));
        c.groups = in_channels / ws[3];
        c.weight_shape = {ws[0], ws[3], ws[1], ws[2]};
      } else {  // 1HWC -> C1HW
        if (ws[0] != 1 || in_channels == 0 || ws[3] % in_channels != 0)
          fail("has weight shape " + dims_str(ws) + " for input " + dims_str(input.shape) +
               ", expected [1, kh, kw, channels x multiplier]");
        c.groups = in_channels;
        c.weight_shape = {ws[3], 1, ws[1], ws[2]};
      }
    }
    budget(weight, where);
    const std::vector<float> stored =
        decode(model, weight, widen(weight.quantization.scale), weight.quantization.zero_point,
               weight.quantization.quantized_dimension, source);
    if (dense || (conv && ws[1] == 1 && ws[2] == 1)) {
      c.weight = stored;  // [out, in] and OHWI with H = W = 1 are OIHW already
    } else {
      c.weight.resize(stored.size());
      const int64_t kh = ws[1], kw = ws[2];
      if (conv) {
        const int64_t out = ws[0], in = ws[3];
        for (int64_t o = 0; o < out; ++o)
          for (int64_t y = 0; y < kh; ++y)
            for (int64_t x = 0; x < kw; ++x)
              for (int64_t ci = 0; ci < in; ++ci)
                c.weight[((o * in + ci) * kh + y) * kw + x] =
                    stored[((o * kh + y) * kw + x) * in + ci];
      } else {
        const int64_t channels = ws[3];
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t x = 0; x < kw; ++x)
            for (int64_t ch = 0; ch < channels; ++ch)
              c.weight[(ch * kh + y) * kw + x] = stored[(y * kw + x) * channels + ch];
      }
    }

    if (bias_index >= 0) {
      const TfliteTensor& bias = tensor_at(model, bias_index, where, source);
      c.bias_name = bias.name;
      const int64_t out = c.weight_shape[0];
      if (bias.shape.size() != 1 || bias.shape[0] != out)
        fail("has bias shape " + dims_str(bias.shape) + " for " + std::to_string(out) +
             " output channels");
      std::vector<double> scales = widen(bias.quantization.scale);
      if (bias.type == static_cast<int>(TfliteType::kInt32)) {
        // The quantisation convention: bias scale = input scale * weight scale (per channel).
        std::vector<double> implied;
        const std::vector<float>& ws_scale = weight.quantization.scale;
        if (!input.quantization.scale.empty() && !ws_scale.empty()) {
          if (ws_scale.size() != 1 && ws_scale.size() != static_cast<size_t>(out))
            fail("has " + std::to_string(ws_scale.size()) + " weight scales for " +
                 std::to_string(out) + " output channels");
          for (int64_t o = 0; o < out; ++o)
            implied.push_back(double(input.quantization.scale[0]) *
                              ws_scale[ws_scale.size() == 1 ? 0 : o]);
        }
        if (scales.empty()) scales = implied;
        if (!implied.empty() && (scales.size() == 1 || scales.size() == implied.size())) {
          for (size_t o = 0; o < implied.size(); ++o) {
            const double stored_scale = scales[scales.size() == 1 ? 0 : o];
            c.bias_scale_mismatch = std::max(
                c.bias_scale_mismatch, std::abs(stored_scale - implied[o]) / std::abs(implied[o]));
          }
        }
      }
      budget(bias, where);
      c.bias = decode(model, bias, scales, bias.quantization.zero_point, 0, source);
    }
    convs.push_back(std::move(c));
  }
  return convs;
}

}  // namespace emt
