#include "engine/onnx/graph_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace emt::onnx_import {
namespace {

bool is_bare_key(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// Where the graph came from, what was rewritten, and how its lines read.
void write_header(std::ostringstream& t, const GraphFileContent& c) {
  const onnx::ModelProto& model = *c.model;
  t << "# Imported from " << printable(c.source) << " by `engine import-onnx`: ONNX graph '"
    << printable(model.graph().name()) << "', opset " << c.opset;
  if (!model.producer_name().empty())
    t << ", produced by " << printable(model.producer_name())
      << (model.producer_version().empty() ? "" : " ") << printable(model.producer_version());
  t << ".\n# " << model.graph().node_size() << " ONNX nodes -> " << c.nodes.size()
    << " engine nodes; each line ends with the ONNX node(s) it came from (index, op, name).\n"
    << "# Weights: the safetensors file written with it, named \"<node>.<param>\".\n";
  if (c.fixed_batch) t << "# The ONNX batch axis is fixed at " << *c.fixed_batch << ".\n";
  for (const auto& p : model.metadata_props())
    t << "# ONNX metadata: " << printable(p.key()) << " = " << printable(p.value()) << "\n";
  if (!c.notes.empty()) {
    t << "# Notes:\n";
    for (const std::string& n : c.notes) t << "#   - " << printable(n) << "\n";
  }
}

// One line; a node reading the previous node's output alone leaves its `in` out.
std::string node_line(const EngineNode& n, const std::string& previous) {
  std::string line = "  { op = " + toml_string(n.op) + ", name = " + toml_string(n.name);
  if (n.inputs.size() == 1 && n.inputs[0] != previous) {
    line += ", in = " + toml_string(n.inputs[0]);
  } else if (n.inputs.size() > 1) {
    line += ", in = [";
    for (size_t i = 0; i < n.inputs.size(); ++i) line += (i ? ", " : "") + toml_string(n.inputs[i]);
    line += "]";
  }
  for (const auto& [key, value] : n.attrs) line += ", " + key + " = " + value;
  return line + " },  # " + n.comment + "\n";
}

void write_graph(std::ostringstream& t, const GraphFileContent& c) {
  t << "\n[graph]\nname = " << toml_string(c.graph_name) << "\ninputs = { ";
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const auto& [name, shape] = c.inputs[i];
    t << (i ? ", " : "") << toml_key(name) << " = [";
    for (size_t d = 1; d < shape.size(); ++d) t << (d > 1 ? ", " : "") << shape[d];
    t << "]";
  }
  t << " }\noutputs = { ";
  for (size_t i = 0; i < c.outputs.size(); ++i)
    t << (i ? ", " : "") << toml_key(c.outputs[i].first) << " = "
      << toml_string(c.outputs[i].second);
  t << " }\nnodes = [\n";
  std::string previous;
  for (const EngineNode& n : c.nodes) {
    t << node_line(n, previous);
    previous = n.name;
  }
  t << "]\n";
}

}  // namespace

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string toml_key(const std::string& s) { return is_bare_key(s) ? s : toml_string(s); }

std::string toml_float(float v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // "n": inf and nan
  return s;
}

std::string toml_float_rounded(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  const float parsed = std::strtof(buf, nullptr);
  return toml_float(parsed);
}

std::string sanitise(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    if (keep)
      out += c;
    else if (!out.empty() && out.back() != '_')
      out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

bool valid_engine_name(const std::string& name) {
  return !name.empty() && name.find('.') == std::string::npos && name[0] != '@';
}

std::string render_graph_file(const GraphFileContent& content) {
  std::ostringstream t;
  write_header(t, content);
  write_graph(t, content);
  return t.str();
}

}  // namespace emt::onnx_import
