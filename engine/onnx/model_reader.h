// ONNX import, reading the model: the protobuf, its opset, and tensors checked against their
// dims, with every refusal naming the model and the node being read. Internal to engine/onnx.
#pragma once

// The onnx CMake targets define these; defining them here as well keeps the importer compiling
// in a target that only finds the headers.
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#ifndef ONNX_ML
#define ONNX_ML 1
#endif

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/onnx/import.h"

namespace emt::onnx_import {

constexpr int64_t kSymbolic = -1;  // a batch axis without a fixed size

// "[N, 3, 224, 224]" (N for kSymbolic), for messages and comments.
std::string dims_str(const Shape& dims);
// Printable on one line (names go into messages and TOML comments).
std::string printable(const std::string& s);
// "float32", "int64", ... for a TensorProto data type.
const char* type_name(int32_t t);

bool default_domain(const std::string& domain);
// The model's opset of the default domain; OnnxFormatError when missing or unknown to libonnx.
int64_t default_opset(const onnx::ModelProto& model, const std::string& source);
// OnnxFormatError when the bytes are empty, do not parse or hold no graph.
onnx::ModelProto parse_model(const std::string& bytes, const std::string& source);
// The element count, or -1 for a negative dim or an overflow.
int64_t checked_numel(const Shape& dims);
Shape dims_of(const onnx::TensorProto& t);

// What an importer knows while reading one model: its source, the node being read (none
// between nodes), and how a refusal is worded; and the tensor readers, which refuse in the same
// words.
class ModelReader {
 public:
  explicit ModelReader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail_unsupported(const std::string& what) const;
  [[noreturn]] void fail_format(const std::string& what) const;

  // Checks that the tensor's data fills its dims (eagerly for initializers, so that a truncated
  // or inconsistent file fails even where the value is never read as numbers).
  void check_tensor(const onnx::TensorProto& t, const std::string& what) const;
  std::vector<float> floats(const onnx::TensorProto& t, const std::string& what) const;
  // int64, int32 and bool tensors as int64.
  std::vector<int64_t> ints(const onnx::TensorProto& t, const std::string& what) const;
  // One number from a one-element float tensor.
  float scalar_float(const onnx::TensorProto& t, const std::string& what) const;

 protected:
  // "<source>: node 3 'conv1' (Conv): <what>".
  std::string message(const std::string& what) const;

  const std::string& source_;
  int index_ = -1;
  const onnx::NodeProto* node_ = nullptr;

 private:
  std::string where() const;
};

}  // namespace emt::onnx_import
