// ONNX import, what the importer knows about each ONNX op: one row per op, naming the method
// of Importer that imports it. Internal to engine/onnx.
#pragma once

#include <string>
#include <vector>

namespace emt::onnx_import {

class Importer;

struct OpRule {
  const char* op;
  // The oldest version of the op whose semantics the importer implements (a model whose opset
  // resolves to an older version is refused as too old).
  int min_version;
  std::vector<std::string> attrs;  // every attribute the importer understands
  std::vector<int> weight_inputs;  // input positions that must be constants
  void (Importer::*import)();      // turns the current node into engine nodes or constants
};

const std::vector<OpRule>& op_rules();
// nullptr for an op the importer does not know.
const OpRule* find_rule(const std::string& op);
// "Conv, ConvTranspose, ..." for messages.
std::string supported_ops();

}  // namespace emt::onnx_import
