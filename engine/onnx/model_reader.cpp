#include "engine/onnx/model_reader.h"

#include <onnx/defs/schema.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <optional>

#include "engine/onnx/parse_cost.h"
#include "ops/core/checked_size.h"

namespace emt::onnx_import {

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; this importer reads it as it is in memory");

std::string dims_str(const Shape& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + (dims[i] == kSymbolic ? std::string("N") : std::to_string(dims[i]));
  return s + "]";
}

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

const char* type_name(int32_t t) {
  switch (t) {
    case onnx::TensorProto::FLOAT:
      return "float32";
    case onnx::TensorProto::UINT8:
      return "uint8";
    case onnx::TensorProto::INT8:
      return "int8";
    case onnx::TensorProto::UINT16:
      return "uint16";
    case onnx::TensorProto::INT16:
      return "int16";
    case onnx::TensorProto::INT32:
      return "int32";
    case onnx::TensorProto::INT64:
      return "int64";
    case onnx::TensorProto::STRING:
      return "string";
    case onnx::TensorProto::BOOL:
      return "bool";
    case onnx::TensorProto::FLOAT16:
      return "float16";
    case onnx::TensorProto::DOUBLE:
      return "float64";
    case onnx::TensorProto::UINT32:
      return "uint32";
    case onnx::TensorProto::UINT64:
      return "uint64";
    case onnx::TensorProto::BFLOAT16:
      return "bfloat16";
    default:
      return "an unknown element type";
  }
}

bool default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

int64_t default_opset(const onnx::ModelProto& model, const std::string& source) {
  std::optional<int64_t> version;
  for (const auto& o : model.opset_import())
    if (default_domain(o.domain())) version = o.version();
  if (!version)
    throw OnnxFormatError(source +
                          ": the model imports no opset of the default ONNX domain "
                          "(a missing or truncated opset_import)");
  const auto& range = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at("");
  if (*version < range.first || *version > range.second)
    throw OnnxFormatError(source + ": opset " + std::to_string(*version) +
                          " of the default ONNX domain is outside what this importer knows (" +
                          std::to_string(range.first) + " to " + std::to_string(range.second) +
                          ")");
  return *version;
}

onnx::ModelProto parse_model(const std::string& bytes, const std::string& source) {
  onnx::ModelProto model;
  if (bytes.empty()) throw OnnxFormatError(source + ": the file is empty");
  check_parse_cost(bytes, *onnx::ModelProto::descriptor(), source);
  if (!model.ParseFromString(bytes))
    throw OnnxFormatError(source + ": not an ONNX model: the protobuf does not parse (" +
                          std::to_string(bytes.size()) + " bytes; truncated or corrupt file?)");
  if (!model.has_graph())
    throw OnnxFormatError(source + ": the model has no graph (truncated file, or not ONNX?)");
  return model;
}

int64_t checked_numel(const Shape& dims) { return product_if_representable(dims).value_or(-1); }

Shape dims_of(const onnx::TensorProto& t) {
  // Element by element: GCC 12 misreads the range constructor from protobuf's iterators
  // (a false -Wfree-nonheap-object).
  Shape dims;
  for (int i = 0; i < t.dims_size(); ++i) dims.push_back(t.dims(i));
  return dims;
}

namespace {

// How a tensor of t's type holds its values: bytes per element in raw_data, and how many values
// the typed field for that type holds. {0, -1} for strings and other types.
struct Storage {
  int64_t elem = 0;
  int64_t typed = -1;
};
Storage storage_of(const onnx::TensorProto& t) {
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      return {4, t.float_data_size()};
    case onnx::TensorProto::DOUBLE:
      return {8, t.double_data_size()};
    case onnx::TensorProto::INT64:
      return {8, t.int64_data_size()};
    case onnx::TensorProto::UINT64:
      return {8, t.uint64_data_size()};
    case onnx::TensorProto::INT32:
      return {4, t.int32_data_size()};
    case onnx::TensorProto::UINT32:
      return {4, t.uint64_data_size()};  // ONNX keeps uint32 values in uint64_data
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      return {2, t.int32_data_size()};
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL:
      return {1, t.int32_data_size()};
    default:
      return {};
  }
}

}  // namespace

std::string ModelReader::where() const {
  if (!node_) return "";
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict, GCC bug 105329) about
  // "'" + std::string here.
  std::string s = "node " + std::to_string(index_) + " ";
  if (!node_->name().empty()) {
    s.append("'").append(printable(node_->name())).append("' (");
    return s.append(printable(node_->op_type())).append(")");
  }
  s.append("(").append(printable(node_->op_type())).append(", unnamed");
  if (node_->output_size()) s.append(", output '").append(printable(node_->output(0))).append("'");
  return s.append(")");
}

std::string ModelReader::message(const std::string& what) const {
  const std::string at = where();
  return source_ + ": " + (at.empty() ? "" : at + ": ") + what;
}

void ModelReader::fail_unsupported(const std::string& what) const {
  throw OnnxUnsupportedError(message(what));
}

void ModelReader::fail_format(const std::string& what) const {
  throw OnnxFormatError(message(what));
}

void ModelReader::check_tensor(const onnx::TensorProto& t, const std::string& what) const {
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0)
    fail_unsupported(what +
                     " keeps its data in an external file; save the model with the data "
                     "inside it");
  if (t.has_segment()) fail_unsupported(what + " is segmented");
  const Shape dims = dims_of(t);
  const int64_t n = checked_numel(dims);
  if (n < 0) fail_format(what + " has invalid dims " + dims_str(dims));
  if (t.data_type() == onnx::TensorProto::UNDEFINED) fail_format(what + " has no data type");
  const auto [elem, typed] = storage_of(t);
  if (elem == 0) return;  // strings and others: refused where they are read
  if (t.has_raw_data()) {
    const auto bytes = static_cast<int64_t>(t.raw_data().size());
    if (product_if_representable(std::array<int64_t, 2>{n, elem}) != bytes)
      fail_format(what + " has dims " + dims_str(dims) + " (" + std::to_string(n) + " " +
                  type_name(t.data_type()) + " values of " + std::to_string(elem) + " bytes) but " +
                  std::to_string(bytes) + " bytes of data (truncated?)");
  } else if (typed != n) {
    fail_format(what + " has dims " + dims_str(dims) + " (" + std::to_string(n) +
                " values) but holds " + std::to_string(typed));
  }
}

std::vector<float> ModelReader::floats(const onnx::TensorProto& t, const std::string& what) const {
  if (t.data_type() != onnx::TensorProto::FLOAT)
    fail_unsupported(what + " is " + type_name(t.data_type()) +
                     "; the engine computes in float32 only");
  check_tensor(t, what);
  const auto n = static_cast<size_t>(checked_numel(dims_of(t)));
  std::vector<float> v(n);
  if (t.has_raw_data())
    std::memcpy(v.data(), t.raw_data().data(), n * sizeof(float));
  else
    std::copy(t.float_data().begin(), t.float_data().end(), v.begin());
  return v;
}

std::vector<int64_t> ModelReader::ints(const onnx::TensorProto& t, const std::string& what) const {
  check_tensor(t, what);
  const auto n = static_cast<size_t>(checked_numel(dims_of(t)));
  std::vector<int64_t> v(n);
  const std::string& raw = t.raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::INT64:
      if (t.has_raw_data())
        std::memcpy(v.data(), raw.data(), n * sizeof(int64_t));
      else
        std::copy(t.int64_data().begin(), t.int64_data().end(), v.begin());
      return v;
    case onnx::TensorProto::INT32:
      for (size_t i = 0; i < n; ++i) {
        int32_t x = 0;
        if (t.has_raw_data())
          std::memcpy(&x, raw.data() + i * sizeof x, sizeof x);
        else
          x = t.int32_data(static_cast<int>(i));
        v[i] = x;
      }
      return v;
    case onnx::TensorProto::BOOL:
      for (size_t i = 0; i < n; ++i)
        v[i] = t.has_raw_data() ? (raw[i] != 0) : (t.int32_data(static_cast<int>(i)) != 0);
      return v;
    default:
      fail_unsupported(what + " is " + type_name(t.data_type()) + ", not an integer tensor");
  }
}

float ModelReader::scalar_float(const onnx::TensorProto& t, const std::string& what) const {
  const std::vector<float> v = floats(t, what);
  if (v.size() != 1)
    fail_format(what + " must hold one value, it has dims " + dims_str(dims_of(t)));
  return v[0];
}

}  // namespace emt::onnx_import
