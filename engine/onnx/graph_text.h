// ONNX import, writing the graph file: TOML text for the engine nodes the importer made, one
// line per node ending with the ONNX node(s) it came from. Internal to engine/onnx.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/onnx/model_reader.h"

namespace emt::onnx_import {

// A TOML basic string, quoted and escaped.
std::string toml_string(const std::string& s);
// A bare key when it is one, else a quoted key.
std::string toml_key(const std::string& s);
// The shortest text that reads back as the same float, as a TOML float.
std::string toml_float(float v);
// Seven significant digits: for values derived in float arithmetic (momentum = 1 - ONNX's),
// which would otherwise print as 0.100000024.
std::string toml_float_rounded(double v);

// The engine's naming rules: node names are non-empty, without '.', not starting with '@'. The
// importer also keeps them to [A-Za-z0-9_-] so that they read well and need no quoting: every
// other run of characters becomes one '_'.
std::string sanitise(const std::string& name);
bool valid_engine_name(const std::string& name);

struct EngineNode {
  std::string op, name;
  std::vector<std::string> inputs;
  std::vector<std::pair<std::string, std::string>> attrs;  // key, TOML value
  std::string comment;
};

// Everything the graph file says.
struct GraphFileContent {
  const onnx::ModelProto* model = nullptr;  // its graph's name, producer and metadata
  std::string source;                       // the model as messages name it
  int64_t opset = 0;
  std::string graph_name;
  std::optional<int64_t> fixed_batch;  // the ONNX batch axis, when the model fixes it
  std::vector<std::pair<std::string, Shape>> inputs;         // engine name, ONNX shape
  std::vector<std::pair<std::string, std::string>> outputs;  // ONNX name, engine value
  std::vector<EngineNode> nodes;
  std::vector<std::string> notes;
};

std::string render_graph_file(const GraphFileContent& content);

}  // namespace emt::onnx_import
