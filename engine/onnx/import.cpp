#include "engine/onnx/import.h"

// The onnx CMake targets define these; defining them here as well keeps this file compiling in a
// target that only finds the headers.
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#ifndef ONNX_ML
#define ONNX_ML 1
#endif

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/runtime/params.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; this importer reads it as it is in memory");

constexpr int64_t kSymbolic = -1;  // a batch axis without a fixed size

// ---------------------------------------------------------------------------------------------
// Text helpers

std::string dims_str(const Shape& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + (dims[i] == kSymbolic ? std::string("N") : std::to_string(dims[i]));
  return s + "]";
}

// Printable on one line (names go into messages and TOML comments).
std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

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

bool is_bare_key(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string toml_key(const std::string& s) { return is_bare_key(s) ? s : toml_string(s); }

// The shortest text that reads back as the same float, as a TOML float.
std::string toml_float(float v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // "n": inf and nan
  return s;
}

// Seven significant digits: for values derived in float arithmetic (momentum = 1 - ONNX's),
// which would otherwise print as 0.100000024.
std::string toml_float_rounded(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  const float parsed = std::strtof(buf, nullptr);
  return toml_float(parsed);
}

// The engine's naming rules: node names are non-empty, without '.', not starting with '@'. The
// importer also keeps them to [A-Za-z0-9_-] so that they read well and need no quoting.
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

// ---------------------------------------------------------------------------------------------
// What the importer knows about each ONNX op.

struct OpRule {
  const char* op;
  // The oldest version of the op whose semantics the importer implements (a model whose opset
  // resolves to an older version is refused as too old).
  int min_version;
  std::vector<std::string> attrs;  // every attribute the importer understands
  std::vector<int> weight_inputs;  // input positions that must be constants
};

const std::vector<OpRule>& op_rules() {
  static const std::vector<OpRule> rules = {
      {"Conv", 1, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}, {1, 2}},
      {"ConvTranspose",
       1,
       {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads",
        "strides"},
       {1, 2}},
      {"BatchNormalization",
       6,
       {"epsilon", "momentum", "spatial", "is_test", "training_mode"},
       {1, 2, 3, 4}},
      {"Relu", 6, {}, {}},
      {"Sigmoid", 6, {}, {}},
      {"Add", 7, {}, {}},
      {"Clip", 6, {"min", "max"}, {1, 2}},
      {"Dropout", 7, {"ratio", "seed"}, {1, 2}},
      {"Gemm", 6, {"alpha", "beta", "transA", "transB", "broadcast"}, {1, 2}},
      {"MatMul", 1, {}, {1}},
      {"GlobalAveragePool", 1, {}, {}},
      {"Flatten", 1, {"axis"}, {}},
      {"Reshape", 5, {"allowzero"}, {1}},
      {"Identity", 1, {}, {}},
      {"Constant", 1, {"value", "value_float", "value_floats", "value_int", "value_ints"}, {}},
      {"Transpose", 1, {"perm"}, {}},
  };
  return rules;
}

const OpRule* find_rule(const std::string& op) {
  for (const OpRule& r : op_rules())
    if (op == r.op) return &r;
  return nullptr;
}

std::string supported_ops() {
  std::string s;
  for (const OpRule& r : op_rules()) s += (s.empty() ? "" : ", ") + std::string(r.op);
  return s;
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
  if (!model.ParseFromString(bytes))
    throw OnnxFormatError(source + ": not an ONNX model: the protobuf does not parse (" +
                          std::to_string(bytes.size()) + " bytes; truncated or corrupt file?)");
  if (!model.has_graph())
    throw OnnxFormatError(source + ": the model has no graph (truncated file, or not ONNX?)");
  return model;
}

int64_t checked_numel(const Shape& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// The importer.

struct Value {
  std::string engine;   // the engine value holding it (a node or graph input name)
  Shape shape;          // ONNX shape, batch axis first (kSymbolic when not fixed)
  bool pooled = false;  // ONNX [N, C, 1, 1] held by the engine as [N, C]
  int producer = -1;    // ONNX node index; -1 for graph inputs
};

struct EngineNode {
  std::string op, name;
  std::vector<std::string> inputs;
  std::vector<std::pair<std::string, std::string>> attrs;  // key, TOML value
  std::string comment;
};

class Importer {
 public:
  Importer(const onnx::ModelProto& model, const OnnxImportOptions& opt)
      : model_(model), graph_(model.graph()), opt_(opt) {}

  OnnxImport run() {
    opset_ = default_opset(model_, opt_.source);
    if (graph_.node_size() == 0) fail_format("the graph has no nodes");
    if (graph_.output_size() == 0) fail_format("the graph has no outputs");
    if (graph_.sparse_initializer_size() > 0)
      fail_unsupported("sparse initializers ('" +
                       printable(graph_.sparse_initializer(0).values().name()) +
                       "') are not supported");
    read_initializers();
    bind_constant_inputs();
    index_nodes();
    read_inputs();
    // Constant nodes have no inputs: defining them first lets a fusion look at a constant that a
    // later Constant node defines (MatMul + Add whose bias is a Constant after the MatMul).
    for (int i = 0; i < graph_.node_size(); ++i)
      if (graph_.node(i).op_type() == "Constant" && default_domain(graph_.node(i).domain())) {
        begin_node(i);
        check_node();
        import_constant();
      }
    for (int i = 0; i < graph_.node_size(); ++i) {
      if (folded_.count(i) ||
          (graph_.node(i).op_type() == "Constant" && default_domain(graph_.node(i).domain())))
        continue;
      begin_node(i);
      check_node();
      import_node();
    }
    node_ = nullptr;
    check_declared_shapes();
    return finish();
  }

 private:
  // --- errors -------------------------------------------------------------------------------

  std::string where() const {
    if (!node_) return "";
    std::string s = "node " + std::to_string(index_) + " ";
    if (!node_->name().empty())
      s += "'" + printable(node_->name()) + "' (" + printable(node_->op_type()) + ")";
    else
      s += "(" + printable(node_->op_type()) + ", unnamed" +
           (node_->output_size() ? ", output '" + printable(node_->output(0)) + "'" : "") + ")";
    return s;
  }

  std::string message(const std::string& what) const {
    const std::string at = where();
    return opt_.source + ": " + (at.empty() ? "" : at + ": ") + what;
  }

  [[noreturn]] void fail_unsupported(const std::string& what) const {
    throw OnnxUnsupportedError(message(what));
  }
  [[noreturn]] void fail_format(const std::string& what) const {
    throw OnnxFormatError(message(what));
  }

  // --- constants ------------------------------------------------------------------------------

  static Shape dims_of(const onnx::TensorProto& t) {
    // Element by element: GCC 12 misreads the range constructor from protobuf's iterators
    // (a false -Wfree-nonheap-object).
    Shape dims;
    for (int i = 0; i < t.dims_size(); ++i) dims.push_back(t.dims(i));
    return dims;
  }

  // How a tensor of t's type holds its values: bytes per element in raw_data, and how many values
  // the typed field for that type holds. {0, -1} for strings and other types.
  struct Storage {
    int64_t elem = 0;
    int64_t typed = -1;
  };
  static Storage storage_of(const onnx::TensorProto& t) {
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

  // Checks that the tensor's data fills its dims (eagerly for initializers, so that a truncated
  // or inconsistent file fails even where the value is never read as numbers).
  void check_tensor(const onnx::TensorProto& t, const std::string& what) const {
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
      if (bytes != n * elem)
        fail_format(what + " has dims " + dims_str(dims) + " (" + std::to_string(n) + " " +
                    type_name(t.data_type()) + " values, " + std::to_string(n * elem) +
                    " bytes) but " + std::to_string(bytes) + " bytes of data (truncated?)");
    } else if (typed != n) {
      fail_format(what + " has dims " + dims_str(dims) + " (" + std::to_string(n) +
                  " values) but holds " + std::to_string(typed));
    }
  }

  std::vector<float> floats(const onnx::TensorProto& t, const std::string& what) const {
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

  std::vector<int64_t> ints(const onnx::TensorProto& t, const std::string& what) const {
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

  // One number from a one-element float tensor.
  float scalar_float(const onnx::TensorProto& t, const std::string& what) const {
    const std::vector<float> v = floats(t, what);
    if (v.size() != 1)
      fail_format(what + " must hold one value, it has dims " + dims_str(dims_of(t)));
    return v[0];
  }

  void read_initializers() {
    for (const onnx::TensorProto& t : graph_.initializer()) {
      if (t.name().empty()) fail_format("an initializer has no name");
      if (constants_.count(t.name()))
        fail_format("the initializer '" + printable(t.name()) + "' is defined twice");
      check_tensor(t, "initializer '" + printable(t.name()) + "'");
      constants_[t.name()] = &t;
    }
  }

  void bind_constant_inputs() {
    std::set<std::string> inputs;
    for (const auto& in : graph_.input()) inputs.insert(in.name());
    for (const auto& [name, bytes] : opt_.constant_inputs) {
      if (!inputs.count(name))
        throw std::invalid_argument(opt_.source + ": constant_inputs binds '" + name +
                                    "', which is not a graph input");
      onnx::TensorProto& t = owned_.emplace_back();
      if (!t.ParseFromString(bytes))
        throw OnnxFormatError(opt_.source + ": the tensor bound to input '" + name +
                              "' does not parse as an onnx.TensorProto");
      check_tensor(t, "the tensor bound to input '" + printable(name) + "'");
      constants_[name] = &t;  // replaces an initializer of the same name, as a feed would
    }
  }

  void index_nodes() {
    for (int i = 0; i < graph_.node_size(); ++i) {
      const onnx::NodeProto& n = graph_.node(i);
      for (const std::string& in : n.input())
        if (!in.empty()) consumers_[in].push_back(i);
      for (const std::string& out : n.output()) {
        if (out.empty()) continue;
        if (producer_.count(out) || constants_.count(out)) {
          begin_node(i);
          fail_format("defines '" + printable(out) + "', which is already defined");
        }
        producer_[out] = i;
      }
    }
    for (const auto& out : graph_.output()) graph_outputs_.insert(out.name());
  }

  // --- graph inputs -----------------------------------------------------------------------------

  // The first node reading `name`, for messages about a graph input.
  void blame_first_reader(const std::string& name) {
    auto it = consumers_.find(name);
    if (it != consumers_.end() && !it->second.empty()) begin_node(it->second.front());
  }

  void read_inputs() {
    std::optional<int64_t> batch;
    for (const onnx::ValueInfoProto& in : graph_.input()) {
      if (constants_.count(in.name())) continue;  // an initializer listed as input (IR < 4)
      const std::string name = printable(in.name());
      if (in.name().empty()) fail_format("a graph input has no name");
      if (producer_.count(in.name())) {
        begin_node(producer_.at(in.name()));
        fail_format("defines '" + name + "', which is a graph input");
      }
      if (values_.count(in.name())) fail_format("the graph input '" + name + "' is listed twice");
      blame_first_reader(in.name());
      if (!in.type().has_tensor_type())
        fail_unsupported("graph input '" + name + "' is not a tensor");
      const auto& tt = in.type().tensor_type();
      if (tt.elem_type() != onnx::TensorProto::FLOAT)
        fail_unsupported("graph input '" + name + "' is " + type_name(tt.elem_type()) +
                         "; the engine computes in float32 only");
      if (!tt.has_shape())
        fail_unsupported("graph input '" + name + "' has no shape; the engine needs fixed C, H, W");
      Shape shape;
      for (int d = 0; d < tt.shape().dim_size(); ++d) {
        const auto& dim = tt.shape().dim(d);
        if (dim.has_dim_value() && dim.dim_value() > 0) {
          shape.push_back(dim.dim_value());
        } else if (dim.has_dim_value()) {
          fail_unsupported("graph input '" + name + "' has the empty dimension " +
                           std::to_string(dim.dim_value()) + " on axis " + std::to_string(d));
        } else if (d == 0) {
          shape.push_back(kSymbolic);
        } else {
          fail_unsupported("graph input '" + name + "' has " +
                           (dim.has_dim_param()
                                ? "the symbolic dimension '" + printable(dim.dim_param()) + "'"
                                : std::string("an unknown or empty dimension")) +
                           " on axis " + std::to_string(d) +
                           "; only the batch axis (0) may vary, the others must be fixed");
        }
      }
      if (shape.size() < 2)
        fail_unsupported("graph input '" + name + "' is " + std::to_string(shape.size()) + "-D " +
                         dims_str(shape) + "; the engine needs a batch axis and at least one more");
      if (shape[0] != kSymbolic) {
        if (batch && *batch != shape[0])
          fail_unsupported("graph input '" + name + "' has batch " + std::to_string(shape[0]) +
                           ", another input " + std::to_string(*batch) +
                           "; the engine runs every input with one batch size");
        batch = shape[0];
      }
      node_ = nullptr;
      std::string engine = in.name();
      if (!valid_engine_name(engine)) {
        engine = unique(sanitise(in.name()).empty() ? "input" : sanitise(in.name()));
        notes_.push_back("graph input '" + name + "' is called '" + engine +
                         "' in the engine ('.' and a leading '@' are not allowed in names)");
      } else {
        if (used_.count(engine)) fail_format("the graph input name '" + name + "' is used twice");
        used_.insert(engine);
      }
      values_[in.name()] = {engine, shape, false, -1};
      inputs_.push_back(in.name());
    }
    node_ = nullptr;
    if (inputs_.empty()) fail_unsupported("the graph has no runtime input");
    batch_ = batch.value_or(1);
  }

  // --- nodes ----------------------------------------------------------------------------------

  void begin_node(int index) {
    index_ = index;
    node_ = &graph_.node(index);
  }

  const onnx::NodeProto& node() const { return *node_; }

  const OpRule& rule() const { return *find_rule(node_->op_type()); }

  // Domain, op, version and attributes; every input defined.
  void check_node() {
    const onnx::NodeProto& n = node();
    if (!default_domain(n.domain()))
      fail_unsupported("op '" + printable(n.op_type()) + "' of domain '" + printable(n.domain()) +
                       "' is not supported (only the default ONNX domain)");
    const OpRule* r = find_rule(n.op_type());
    if (!r)
      fail_unsupported("op '" + printable(n.op_type()) +
                       "' has no engine equivalent (supported: " + supported_ops() + ")");
    const onnx::OpSchema* schema =
        onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(opset_), "");
    if (!schema)
      fail_format("op '" + n.op_type() + "' does not exist in opset " + std::to_string(opset_) +
                  " (wrong opset?)");
    version_ = schema->since_version();
    if (version_ < r->min_version)
      fail_format("opset " + std::to_string(opset_) + " gives " + n.op_type() + " version " +
                  std::to_string(version_) + ", too old: the importer reads version " +
                  std::to_string(r->min_version) + " and later (opset " +
                  std::to_string(r->min_version) + "+)");
    for (const onnx::AttributeProto& a : n.attribute())
      if (std::find(r->attrs.begin(), r->attrs.end(), a.name()) == r->attrs.end())
        fail_unsupported("attribute '" + printable(a.name()) + "' is not supported");
    for (const std::string& in : n.input()) {
      if (in.empty() || values_.count(in) || constants_.count(in)) continue;
      auto p = producer_.find(in);
      if (p != producer_.end() && p->second > index_)
        fail_format("reads '" + printable(in) + "', which node " + std::to_string(p->second) +
                    " computes later: the nodes are not in topological order");
      // An earlier node's output that is neither a value nor a constant is the inner value of
      // a fusion (MatMul + Add, GlobalAveragePool + Flatten) whose second node this is.
      if (p != producer_.end()) continue;
      fail_format("reads '" + printable(in) +
                  "', which no initializer, graph input or earlier node defines (a missing "
                  "initializer?)");
    }
  }

  const onnx::AttributeProto* attr(const std::string& name) const {
    for (const onnx::AttributeProto& a : node().attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }

  int64_t attr_int(const std::string& name, int64_t fallback) const {
    const onnx::AttributeProto* a = attr(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::INT && !(a->type() == 0 && a->has_i()))
      fail_format("attribute '" + name + "' must be an integer");
    return a->i();
  }

  float attr_float(const std::string& name, float fallback) const {
    const onnx::AttributeProto* a = attr(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::FLOAT && !(a->type() == 0 && a->has_f()))
      fail_format("attribute '" + name + "' must be a float");
    return a->f();
  }

  std::optional<Shape> attr_ints(const std::string& name) const {
    const onnx::AttributeProto* a = attr(name);
    if (!a) return std::nullopt;
    if (a->type() != onnx::AttributeProto::INTS && !(a->type() == 0 && a->ints_size() > 0))
      fail_format("attribute '" + name + "' must be a list of integers");
    return Shape(a->ints().begin(), a->ints().end());
  }

  std::string attr_string(const std::string& name, const std::string& fallback) const {
    const onnx::AttributeProto* a = attr(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::STRING && !(a->type() == 0 && a->has_s()))
      fail_format("attribute '" + name + "' must be a string");
    return a->s();
  }

  // Input `i` of the node, or "" when absent.
  std::string input(int i) const {
    return i < node().input_size() ? node().input(i) : std::string();
  }

  const Value& runtime(int i, const std::string& role, bool allow_pooled = false) const {
    const std::string& name = input(i);
    if (name.empty()) fail_format("has no " + role + " (input " + std::to_string(i) + ")");
    auto it = values_.find(name);
    if (it == values_.end())
      fail_unsupported(role + " '" + printable(name) +
                       "' is a constant; the engine has no op taking a constant there");
    if (it->second.pooled && !allow_pooled)
      fail_unsupported(role + " '" + printable(name) +
                       "' is a GlobalAveragePool output [N, C, 1, 1], which the engine holds as "
                       "[N, C]: only a Flatten or Reshape to [N, C], elementwise ops and graph "
                       "outputs may read it");
    return it->second;
  }

  const onnx::TensorProto& constant(int i, const std::string& role) const {
    const std::string& name = input(i);
    if (name.empty()) fail_format("has no " + role + " (input " + std::to_string(i) + ")");
    auto it = constants_.find(name);
    if (it != constants_.end()) return *it->second;
    const Value& v = values_.at(name);
    if (v.producer < 0)
      fail_unsupported(
          role + " '" + printable(name) +
          "' is a runtime graph input; the engine needs weights as initializers (a "
          "caller of the library can bind a value: OnnxImportOptions::constant_inputs)");
    fail_unsupported(role + " '" + printable(name) + "' is computed at run time by node " +
                     std::to_string(v.producer) + "; the engine needs it as an initializer");
  }

  bool has_input(int i) const { return !input(i).empty(); }

  // Only outputs [0, used) may be consumed or exported.
  void require_outputs(int used, const std::string& why) const {
    for (int o = used; o < node().output_size(); ++o)
      if (!node().output(o).empty())
        fail_unsupported("output " + std::to_string(o) + " ('" + printable(node().output(o)) +
                         "') is not supported: " + why);
  }

  void define(int output, Value v) {
    if (output >= node().output_size() || node().output(output).empty())
      fail_format("has no output " + std::to_string(output));
    v.producer = index_;
    values_[node().output(output)] = std::move(v);
  }

  std::string comment_for(const std::vector<int>& nodes) const {
    std::string s;
    for (int i : nodes) {
      const onnx::NodeProto& n = graph_.node(i);
      s += (s.empty() ? "" : " + ") + std::to_string(i) + " " + printable(n.op_type());
      if (!n.name().empty()) s += " '" + printable(n.name()) + "'";
    }
    return s;
  }

  std::string unique(const std::string& base) {
    std::string candidate = base;
    for (int i = 2; used_.count(candidate); ++i) candidate = base + "_" + std::to_string(i);
    used_.insert(candidate);
    return candidate;
  }

  // The engine name for what node `i` computes.
  std::string engine_name(int i, const std::string& engine_op) {
    const onnx::NodeProto& n = graph_.node(i);
    std::string base = sanitise(n.name());
    if (base.empty() && n.output_size() > 0) base = sanitise(n.output(0));
    if (base.empty()) base = std::to_string(i);
    if (std::isdigit(static_cast<unsigned char>(base[0]))) base = engine_op + "_" + base;
    return unique(base);
  }

  std::string emit(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                   std::vector<std::pair<std::string, std::string>> attrs,
                   const std::vector<int>& onnx_nodes) {
    nodes_.push_back({op, name, std::move(inputs), std::move(attrs), comment_for(onnx_nodes)});
    return name;
  }

  void add_weight(const std::string& node, const std::string& param, Shape dims,
                  std::vector<float> data) {
    weights_.push_back({node + "." + param, std::move(dims), std::move(data)});
  }

  void import_node() {
    const std::string& op = node().op_type();
    if (op == "Conv")
      import_conv();
    else if (op == "ConvTranspose")
      import_conv_transpose();
    else if (op == "BatchNormalization")
      import_batch_norm();
    else if (op == "Relu")
      import_unary("relu");
    else if (op == "Sigmoid")
      import_unary("sigmoid");
    else if (op == "Add")
      import_add();
    else if (op == "Clip")
      import_clip();
    else if (op == "Dropout")
      import_dropout();
    else if (op == "Gemm")
      import_gemm();
    else if (op == "MatMul")
      import_matmul();
    else if (op == "GlobalAveragePool")
      import_global_avg_pool();
    else if (op == "Flatten" || op == "Reshape")
      import_reshape();
    else if (op == "Identity")
      import_identity();
    else if (op == "Transpose")
      import_transpose();
  }

  // --- spatial ops ----------------------------------------------------------------------------

  // The input of a 2-D conv/pool: [N, C, H, W].
  const Value& spatial_input(const std::string& what) const {
    const Value& x = runtime(0, "input");
    if (x.shape.size() != 4)
      fail_unsupported(x.shape.size() == 3 ? "1-D " + what + " (input " + dims_str(x.shape) +
                                                 "); the engine has 2-D NCHW ops only"
                       : x.shape.size() == 5
                           ? "3-D " + what + " (input " + dims_str(x.shape) +
                                 "); the engine has 2-D NCHW ops only"
                           : what + " of a " + std::to_string(x.shape.size()) + "-D input " +
                                 dims_str(x.shape) + "; the engine needs [N, C, H, W]");
    return x;
  }

  struct ConvAttrs {
    int64_t kernel = 1, stride = 1, pad = 0;
  };

  // strides, pads, dilations and auto_pad of Conv / ConvTranspose, reduced to the engine's one
  // stride and one pad (checked before the weight, so that the attributes are what a refusal
  // names first).
  ConvAttrs conv_attrs() const {
    const std::string auto_pad = attr_string("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET")
      fail_unsupported("auto_pad = " + printable(auto_pad) +
                       " is not supported (only NOTSET, with explicit pads)");
    if (const auto d = attr_ints("dilations")) {
      if (d->size() != 2) fail_format("dilations " + dims_str(*d) + " must have 2 values");
      if ((*d)[0] != 1 || (*d)[1] != 1)
        fail_unsupported("dilations " + dims_str(*d) + " are not supported (only 1)");
    }
    ConvAttrs c;
    if (const auto s = attr_ints("strides")) {
      if (s->size() != 2) fail_format("strides " + dims_str(*s) + " must have 2 values");
      if ((*s)[0] < 1 || (*s)[1] < 1) fail_format("strides " + dims_str(*s) + " must be >= 1");
      if ((*s)[0] != (*s)[1])
        fail_unsupported("unequal strides " + dims_str(*s) +
                         " are not supported (one stride for both axes)");
      c.stride = (*s)[0];
    }
    if (const auto p = attr_ints("pads")) {
      if (p->size() != 4) fail_format("pads " + dims_str(*p) + " must have 4 values");
      if (std::any_of(p->begin(), p->end(), [](int64_t v) { return v < 0; }))
        fail_unsupported("negative pads " + dims_str(*p) + " are not supported");
      if (std::any_of(p->begin(), p->end(), [&](int64_t v) { return v != (*p)[0]; }))
        fail_unsupported("asymmetric pads " + dims_str(*p) +
                         " are not supported (the engine pads every side alike)");
      c.pad = (*p)[0];
    }
    return c;
  }

  // The kernel size from the weight [., ., kH, kW], checked against kernel_shape.
  int64_t conv_kernel(const Shape& weight) const {
    const int64_t kh = weight[2], kw = weight[3];
    if (const auto k = attr_ints("kernel_shape"); k && *k != Shape{kh, kw})
      fail_format("kernel_shape " + dims_str(*k) + " contradicts the weight " + dims_str(weight));
    if (kh != kw)
      fail_unsupported("the non-square kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                       " is not supported (the engine's kernels are square)");
    return kh;
  }

  // Input 2 of Conv/ConvTranspose: the optional per-output-channel bias.
  std::optional<std::vector<float>> optional_bias(int64_t cout) {
    if (!has_input(2)) return std::nullopt;
    const onnx::TensorProto& b = constant(2, "bias");
    if (dims_of(b) != Shape{cout})
      fail_format("the bias " + dims_str(dims_of(b)) + " does not match " + std::to_string(cout) +
                  " output channels");
    return floats(b, "bias '" + printable(input(2)) + "'");
  }

  // The node, its weight (input 1) and optional bias, and its output value.
  void emit_conv(const std::string& op, const std::string& kind, const Value& x,
                 const std::vector<std::pair<std::string, std::string>>& attrs,
                 const onnx::TensorProto& w, std::optional<std::vector<float>>& bias,
                 const Shape& out_shape) {
    const std::string name = engine_name(index_, kind);
    emit(op, name, {x.engine}, attrs, {index_});
    add_weight(name, "weight", dims_of(w), floats(w, "weight '" + printable(input(1)) + "'"));
    if (bias) add_weight(name, "bias", {out_shape[1]}, std::move(*bias));
    define(0, {name, out_shape});
  }

  void import_conv() {
    const Value& x = spatial_input("convolution");
    ConvAttrs c = conv_attrs();
    const onnx::TensorProto& w = constant(1, "weight");
    const Shape wd = dims_of(w);
    if (wd.size() != 4)
      fail_format("the weight " + dims_str(wd) + " does not fit the input " + dims_str(x.shape));
    c.kernel = conv_kernel(wd);
    const int64_t group = attr_int("group", 1);
    const int64_t cin = x.shape[1], cout = wd[0];
    if (group < 1 || cin % group != 0 || wd[1] * group != cin || cout % group != 0)
      fail_format("the weight " + dims_str(wd) + " with group " + std::to_string(group) +
                  " does not fit the input " + dims_str(x.shape));
    std::optional<std::vector<float>> bias = optional_bias(cout);
    const int64_t ho = (x.shape[2] + 2 * c.pad - c.kernel) / c.stride + 1;
    const int64_t wo = (x.shape[3] + 2 * c.pad - c.kernel) / c.stride + 1;
    if (x.shape[2] + 2 * c.pad < c.kernel || x.shape[3] + 2 * c.pad < c.kernel)
      fail_format("the " + std::to_string(c.kernel) + "x" + std::to_string(c.kernel) +
                  " window is larger than the padded input " + dims_str(x.shape));
    require_outputs(1, "Conv has one output");

    const bool depthwise = group > 1 && group == cin && cout == cin;
    std::vector<std::pair<std::string, std::string>> attrs;
    if (!depthwise) attrs.emplace_back("out", std::to_string(cout));
    attrs.emplace_back("kernel", std::to_string(c.kernel));
    if (c.stride != 1) attrs.emplace_back("stride", std::to_string(c.stride));
    attrs.emplace_back("pad", std::to_string(c.pad));
    if (depthwise)
      attrs.emplace_back("depthwise", "true");
    else if (group != 1)
      attrs.emplace_back("groups", std::to_string(group));
    if (!bias) attrs.emplace_back("bias", "false");
    emit_conv("conv2d", "conv", x, attrs, w, bias, {x.shape[0], cout, ho, wo});
  }

  void import_conv_transpose() {
    const Value& x = spatial_input("transposed convolution");
    const int64_t group = attr_int("group", 1);
    if (group != 1)
      fail_unsupported("group = " + std::to_string(group) +
                       " is not supported (the engine's conv_transpose2d is not grouped)");
    if (attr("output_shape"))
      fail_unsupported("output_shape is not supported (give pads and output_padding instead)");
    ConvAttrs c = conv_attrs();
    const onnx::TensorProto& w = constant(1, "weight");
    const Shape wd = dims_of(w);
    if (wd.size() != 4)
      fail_format("the weight " + dims_str(wd) + " does not fit the input " + dims_str(x.shape));
    c.kernel = conv_kernel(wd);
    int64_t output_pad = 0;
    if (const auto op = attr_ints("output_padding")) {
      if (op->size() != 2) fail_format("output_padding " + dims_str(*op) + " must have 2 values");
      if ((*op)[0] != (*op)[1])
        fail_unsupported("unequal output_padding " + dims_str(*op) + " is not supported");
      output_pad = (*op)[0];
      if (output_pad < 0 || output_pad >= c.stride)
        fail_format("output_padding " + dims_str(*op) + " must be in [0, stride " +
                    std::to_string(c.stride) + ")");
    }
    const int64_t cin = x.shape[1], cout = wd[1];
    if (wd[0] != cin)
      fail_format("the weight " + dims_str(wd) + " does not fit the input " + dims_str(x.shape) +
                  " (ConvTranspose weights are [C_in, C_out, kH, kW])");
    std::optional<std::vector<float>> bias = optional_bias(cout);
    const int64_t ho = (x.shape[2] - 1) * c.stride - 2 * c.pad + c.kernel + output_pad;
    const int64_t wo = (x.shape[3] - 1) * c.stride - 2 * c.pad + c.kernel + output_pad;
    if (ho < 1 || wo < 1)
      fail_format("the output of input " + dims_str(x.shape) + " would be empty");
    require_outputs(1, "ConvTranspose has one output");

    std::vector<std::pair<std::string, std::string>> attrs = {{"out", std::to_string(cout)},
                                                              {"kernel", std::to_string(c.kernel)}};
    if (c.stride != 1) attrs.emplace_back("stride", std::to_string(c.stride));
    attrs.emplace_back("pad", std::to_string(c.pad));
    if (output_pad != 0) attrs.emplace_back("output_pad", std::to_string(output_pad));
    if (!bias) attrs.emplace_back("bias", "false");
    emit_conv("conv_transpose2d", "deconv", x, attrs, w, bias, {x.shape[0], cout, ho, wo});
  }

  void import_batch_norm() {
    if (version_ < 7 && attr_int("is_test", 0) == 0)
      fail_unsupported(
          "is_test = 0 (training mode) is not supported: the importer reads "
          "inference graphs (running statistics)");
    if (version_ < 9 && attr_int("spatial", 1) != 1)
      fail_unsupported("spatial = 0 (statistics per element, not per channel) is not supported");
    if (attr_int("training_mode", 0) != 0)
      fail_unsupported(
          "training_mode = 1 is not supported: the importer reads inference graphs "
          "(running statistics)");
    require_outputs(1, "the running mean / variance outputs exist in training mode only");
    const Value& x = runtime(0, "input");
    if (x.shape.size() != 2 && x.shape.size() != 4)
      fail_unsupported("BatchNormalization of a " + std::to_string(x.shape.size()) + "-D input " +
                       dims_str(x.shape) +
                       " is not supported (the engine normalises [N, C] or [N, C, H, W])");
    const int64_t channels = x.shape[1];
    const char* roles[] = {"scale", "B", "mean", "var"};
    const char* params[] = {"gamma", "beta", "running_mean", "running_var"};
    std::vector<std::vector<float>> data;
    for (int i = 0; i < 4; ++i) {
      const onnx::TensorProto& t = constant(i + 1, roles[i]);
      if (dims_of(t) != Shape{channels})
        fail_format(std::string(roles[i]) + " '" + printable(input(i + 1)) + "' is " +
                    dims_str(dims_of(t)) + ", the input " + dims_str(x.shape) + " has " +
                    std::to_string(channels) + " channels");
      data.push_back(floats(t, std::string(roles[i]) + " '" + printable(input(i + 1)) + "'"));
    }
    const float eps = attr_float("epsilon", 1e-5f);
    const float momentum = attr_float("momentum", 0.9f);
    if (!(eps >= 0)) fail_format("epsilon " + toml_float(eps) + " must be >= 0");
    if (!(momentum >= 0 && momentum <= 1))
      fail_unsupported("momentum " + toml_float(momentum) + " is outside [0, 1]");
    const std::string name = engine_name(index_, "bn");
    // ONNX: running = momentum * running + (1 - momentum) * batch; the engine (PyTorch) weighs
    // the batch by its momentum.
    emit("batch_norm", name, {x.engine},
         {{"eps", toml_float(eps)}, {"momentum", toml_float_rounded(1.0 - momentum)}}, {index_});
    for (int i = 0; i < 4; ++i) add_weight(name, params[i], {channels}, std::move(data[i]));
    define(0, {name, x.shape});
  }

  // --- elementwise ----------------------------------------------------------------------------

  void import_unary(const std::string& op) {
    const Value& x = runtime(0, "input", true);
    require_outputs(1, node().op_type() + " has one output");
    const std::string name = engine_name(index_, op);
    emit(op, name, {x.engine}, {}, {index_});
    define(0, {name, x.shape, x.pooled});
  }

  static bool broadcastable(const Shape& a, const Shape& b) {
    for (size_t i = 1; i <= std::min(a.size(), b.size()); ++i) {
      const int64_t x = a[a.size() - i], y = b[b.size() - i];
      if (x != y && x != 1 && y != 1) return false;
    }
    return true;
  }

  void import_add() {
    for (int i = 0; i < 2; ++i)
      if (constants_.count(input(i)))
        fail_unsupported("adds the constant '" + printable(input(i)) +
                         "': the engine's add takes two computed values (a constant is "
                         "imported only as the bias of a MatMul, folded into dense)");
    const Value& a = runtime(0, "input A", true);
    const Value& b = runtime(1, "input B", true);
    if (a.shape != b.shape || a.pooled != b.pooled) {
      if (!broadcastable(a.shape, b.shape))
        fail_format("the shapes " + dims_str(a.shape) + " and " + dims_str(b.shape) +
                    " do not broadcast");
      fail_unsupported("broadcasting " + dims_str(a.shape) + " + " + dims_str(b.shape) +
                       " is not supported (the engine adds equal shapes)");
    }
    require_outputs(1, "Add has one output");
    const std::string name = engine_name(index_, "add");
    emit("add", name, {a.engine, b.engine}, {}, {index_});
    define(0, {name, a.shape, a.pooled});
  }

  // The value of an identity node is its input's.
  void alias(const std::string& onnx_input, const std::string& why) {
    auto c = constants_.find(onnx_input);
    if (c != constants_.end()) {
      constants_[node().output(0)] = c->second;
      return;
    }
    Value v = values_.at(onnx_input);
    define(0, v);
    notes_.push_back(comment_for({index_}) + " is the identity (" + why + "): folded away");
  }

  void import_clip() {
    require_outputs(1, "Clip has one output");
    std::optional<float> lo, hi;
    if (version_ < 11) {
      if (attr("min")) lo = attr_float("min", 0);
      if (attr("max")) hi = attr_float("max", 0);
    } else {
      if (has_input(1)) lo = scalar_float(constant(1, "min"), "min '" + printable(input(1)) + "'");
      if (has_input(2)) hi = scalar_float(constant(2, "max"), "max '" + printable(input(2)) + "'");
    }
    // The defaults are the float range's ends: as good as no bound.
    if (lo && *lo <= std::numeric_limits<float>::lowest()) lo.reset();
    if (hi && *hi >= std::numeric_limits<float>::max()) hi.reset();
    const Value& x = runtime(0, "input", true);
    const auto bound = [](const std::optional<float>& v, const char* none) {
      return v ? toml_float(*v) : std::string(none);
    };
    std::string op;
    if (lo && *lo == 0.0f && hi && *hi == 6.0f)
      op = "relu6";
    else if (lo && *lo == 0.0f && !hi)
      op = "relu";
    else if (!lo && !hi)
      return alias(input(0), "Clip without bounds");
    else
      fail_unsupported("Clip(" + bound(lo, "-inf") + ", " + bound(hi, "+inf") +
                       ") has no engine op (only Clip(0, 6) -> relu6 and Clip(0, +inf) -> relu)");
    const std::string name = engine_name(index_, op);
    emit(op, name, {x.engine}, {}, {index_});
    define(0, {name, x.shape, x.pooled});
  }

  void import_dropout() {
    require_outputs(1, "the mask output (a bool tensor) is not supported");
    float ratio = 0.5f;
    if (version_ < 12) {
      ratio = attr_float("ratio", 0.5f);
    } else {
      if (has_input(1))
        ratio = scalar_float(constant(1, "ratio"), "ratio '" + printable(input(1)) + "'");
      if (has_input(2)) {
        const onnx::TensorProto& t = constant(2, "training_mode");
        const std::vector<int64_t> v = ints(t, "training_mode '" + printable(input(2)) + "'");
        if (v.size() != 1) fail_format("training_mode must hold one value");
        if (v[0] != 0)
          fail_unsupported(
              "training_mode = true is not supported: the importer reads "
              "inference graphs");
      }
    }
    if (!(ratio >= 0 && ratio < 1))
      fail_unsupported("ratio " + toml_float(ratio) + " is not in [0, 1)");
    const Value& x = runtime(0, "input", true);
    const std::string name = engine_name(index_, "dropout");
    emit("dropout", name, {x.engine}, {{"rate", toml_float(ratio)}}, {index_});
    define(0, {name, x.shape, x.pooled});
  }

  // --- dense ----------------------------------------------------------------------------------

  // A bias for `outputs` features from a constant that broadcasts along the batch: [], [1],
  // [M] or [1, M].
  std::vector<float> row_bias(const onnx::TensorProto& t, int64_t outputs, int64_t batch,
                              const std::string& what) const {
    const Shape d = dims_of(t);
    std::vector<float> v = floats(t, what);
    if (v.size() == 1) return std::vector<float>(static_cast<size_t>(outputs), v[0]);
    const bool row =
        (d.size() == 1 && d[0] == outputs) || (d.size() == 2 && d[0] == 1 && d[1] == outputs);
    if (row) return v;
    if (d.size() == 2 && d[1] == outputs && (d[0] == batch || batch == kSymbolic))
      fail_unsupported(what + " is a " + dims_str(d) +
                       " matrix (one bias row per batch row); the engine's dense takes one bias "
                       "per output");
    fail_format(what + " " + dims_str(d) + " does not broadcast to [N, " + std::to_string(outputs) +
                "]");
  }

  void import_gemm() {
    require_outputs(1, "Gemm has one output");
    if (attr_int("transA", 0) != 0)
      fail_unsupported(
          "transA = 1 is not supported (the engine's dense reads the batch on axis "
          "0)");
    const Value& a = runtime(0, "input A");
    if (a.shape.size() != 2) fail_format("input A " + dims_str(a.shape) + " must be 2-D");
    const onnx::TensorProto& bt = constant(1, "B");
    const Shape bd = dims_of(bt);
    if (bd.size() != 2) fail_format("B " + dims_str(bd) + " must be 2-D");
    const bool trans_b = attr_int("transB", 0) != 0;
    const int64_t k = trans_b ? bd[1] : bd[0], m = trans_b ? bd[0] : bd[1];
    if (k != a.shape[1])
      fail_format("B " + dims_str(bd) + (trans_b ? " (transB = 1)" : "") +
                  " does not fit input A " + dims_str(a.shape));
    const float alpha = attr_float("alpha", 1.0f), beta = attr_float("beta", 1.0f);
    std::vector<float> weight =
        to_dense_weight(floats(bt, "B '" + printable(input(1)) + "'"), k, m, trans_b);
    if (alpha != 1.0f)
      for (float& w : weight) w *= alpha;
    std::optional<std::vector<float>> bias;
    if (has_input(2)) {
      bias = row_bias(constant(2, "C"), m, a.shape[0], "C '" + printable(input(2)) + "'");
      if (beta != 1.0f)
        for (float& b : *bias) b *= beta;
    }
    if (alpha != 1.0f || (bias && beta != 1.0f))
      notes_.push_back(comment_for({index_}) + ": alpha " + toml_float(alpha) + " and beta " +
                       toml_float(beta) + " are folded into the dense weights");
    emit_dense(a, m, k, std::move(weight), std::move(bias), {index_}, 0);
  }

  // [M, K] from B [K, M] (or B itself when it is already [M, K]).
  static std::vector<float> to_dense_weight(std::vector<float> b, int64_t k, int64_t m,
                                            bool already_mk) {
    if (already_mk) return b;
    std::vector<float> w(b.size());
    for (int64_t r = 0; r < k; ++r)
      for (int64_t c = 0; c < m; ++c)
        w[static_cast<size_t>(c * k + r)] = b[static_cast<size_t>(r * m + c)];
    return w;
  }

  void emit_dense(const Value& a, int64_t m, int64_t k, std::vector<float> weight,
                  std::optional<std::vector<float>> bias, const std::vector<int>& onnx_nodes,
                  int output_of_last) {
    std::vector<std::pair<std::string, std::string>> attrs = {{"out", std::to_string(m)}};
    if (!bias) attrs.emplace_back("bias", "false");
    const std::string name = engine_name(onnx_nodes.front(), "dense");
    emit("dense", name, {a.engine}, attrs, onnx_nodes);
    add_weight(name, "weight", {m, k}, std::move(weight));
    if (bias) add_weight(name, "bias", {m}, std::move(*bias));
    const int last = onnx_nodes.back();
    const int keep = index_;
    begin_node(last);
    define(output_of_last, {name, {a.shape[0], m}});
    begin_node(keep);
  }

  // The only reader of this node's output 0, when the output is not also a graph output.
  std::optional<int> sole_consumer() const {
    const std::string& out = node().output_size() ? node().output(0) : std::string();
    if (out.empty() || graph_outputs_.count(out)) return std::nullopt;
    auto it = consumers_.find(out);
    if (it == consumers_.end() || it->second.size() != 1) return std::nullopt;
    // A node reading the value twice (Add(y, y)) lists it twice.
    return it->second.front();
  }

  void import_matmul() {
    require_outputs(1, "MatMul has one output");
    const Value& a = runtime(0, "input A");
    if (a.shape.size() != 2)
      fail_unsupported("batched MatMul (input A " + dims_str(a.shape) +
                       ") is not supported (the engine's dense takes [N, K])");
    if (values_.count(input(1)))
      fail_unsupported(
          "MatMul of two computed values is not supported (B must be a constant "
          "weight)");
    const onnx::TensorProto& bt = constant(1, "B");
    const Shape bd = dims_of(bt);
    if (bd.size() != 2) fail_unsupported("B " + dims_str(bd) + " is not a [K, M] matrix");
    if (bd[0] != a.shape[1])
      fail_format("B " + dims_str(bd) + " does not fit input A " + dims_str(a.shape));
    const int64_t k = bd[0], m = bd[1];
    std::vector<float> weight =
        to_dense_weight(floats(bt, "B '" + printable(input(1)) + "'"), k, m, false);
    // MatMul + Add(constant [M]) is a dense layer with a bias.
    if (const auto j = sole_consumer()) {
      const onnx::NodeProto& add = graph_.node(*j);
      if (add.op_type() == "Add" && default_domain(add.domain()) && add.input_size() == 2 &&
          add.output_size() == 1) {
        const std::string& other = add.input(0) == node().output(0) ? add.input(1) : add.input(0);
        auto c = constants_.find(other);
        if (c != constants_.end()) {
          const Shape cd = dims_of(*c->second);
          const bool row =
              (cd.size() == 1 && cd[0] == m) || (cd.size() == 2 && cd[0] == 1 && cd[1] == m);
          if (row) {
            const int keep = index_, keep_version = version_;
            begin_node(*j);
            check_node();
            std::vector<float> bias = floats(*c->second, "bias '" + printable(other) + "'");
            begin_node(keep);
            version_ = keep_version;
            folded_.insert(*j);
            emit_dense(a, m, k, std::move(weight), std::move(bias), {index_, *j}, 0);
            return;
          }
        }
      }
    }
    emit_dense(a, m, k, std::move(weight), std::nullopt, {index_}, 0);
  }

  // --- pooling and reshapes -------------------------------------------------------------------

  // Whether node `j` (a Flatten or Reshape) turns `in` ([N, C, 1, 1] or [N, C]) into [N, C].
  bool flattens_to_2d(int j, const Shape& in) {
    const onnx::NodeProto& n = graph_.node(j);
    if (!default_domain(n.domain()) || n.output_size() < 1 || n.input_size() < 1) return false;
    const int keep = index_, keep_version = version_;
    begin_node(j);
    check_node();
    bool ok = false;
    const Shape want = {in[0], in[1]};
    if (n.op_type() == "Flatten") {
      int64_t axis = attr_int("axis", 1);
      if (axis < 0) axis += static_cast<int64_t>(in.size());
      ok = axis == 1;
    } else if (n.op_type() == "Reshape" && has_input(1) && constants_.count(input(1))) {
      const std::vector<int64_t> t = ints(*constants_.at(input(1)), "shape");
      const bool allowzero = attr_int("allowzero", 0) != 0;
      if (t.size() == 2) {
        // Each target entry: 0 copies the input's entry (unless allowzero), -1 takes the rest.
        const auto entry = [&](size_t i, int64_t v) -> std::optional<int64_t> {
          if (v == 0 && !allowzero) return in[i];
          if (v > 0) return v;
          return std::nullopt;
        };
        const auto d0 = entry(0, t[0]), d1 = entry(1, t[1]);
        if (d0 && d1)
          ok = *d0 == want[0] && *d1 == want[1];
        else if (d0 && t[1] == -1)
          ok = *d0 == want[0];  // [N, -1]: the rest is C (every other axis is 1)
        else if (d1 && t[0] == -1)
          ok = *d1 == want[1];  // [-1, C]: the rest is N
      }
    }
    begin_node(keep);
    version_ = keep_version;
    return ok;
  }

  void import_global_avg_pool() {
    require_outputs(1, "GlobalAveragePool has one output");
    const Value& x = spatial_input("global average pooling");
    const Shape pooled = {x.shape[0], x.shape[1], 1, 1};
    if (const auto j = sole_consumer();
        j && (graph_.node(*j).op_type() == "Flatten" || graph_.node(*j).op_type() == "Reshape")) {
      if (flattens_to_2d(*j, pooled)) {
        // One global_avg_pool for both nodes, named after the pool -- or after the Flatten when
        // the pool's name extends it (this engine's export writes "<node>/pool" + "<node>").
        const onnx::NodeProto& flat = graph_.node(*j);
        const bool export_pair =
            !flat.name().empty() && node().name().rfind(flat.name() + "/", 0) == 0;
        const std::string name = engine_name(export_pair ? *j : index_, "gap");
        emit("global_avg_pool", name, {x.engine}, {}, {index_, *j});
        folded_.insert(*j);
        const int keep = index_;
        begin_node(*j);
        define(0, {name, {x.shape[0], x.shape[1]}});
        begin_node(keep);
        return;
      }
    }
    const std::string name = engine_name(index_, "gap");
    emit("global_avg_pool", name, {x.engine}, {}, {index_});
    define(0, {name, pooled, true});
  }

  void import_reshape() {
    require_outputs(1, node().op_type() + " has one output");
    const Value& x = runtime(0, "input", true);
    if ((x.pooled || x.shape.size() == 2) && flattens_to_2d(index_, x.shape)) {
      if (x.pooled)
        return alias_as(x, {x.shape[0], x.shape[1]},
                        "to [N, C] after GlobalAveragePool, which the engine already gives");
      return alias_as(x, x.shape, "a [N, C] tensor keeps its shape");
    }
    fail_unsupported(node().op_type() + " of " + dims_str(x.shape) +
                     " is not supported: the engine has no reshape op (only a Flatten or "
                     "Reshape to [N, C] right after GlobalAveragePool, or of a [N, C] tensor "
                     "to itself, is imported)");
  }

  void alias_as(const Value& x, const Shape& shape, const std::string& why) {
    Value v = x;
    v.shape = shape;
    v.pooled = false;
    define(0, v);
    notes_.push_back(comment_for({index_}) + " is folded away (" + why + ")");
  }

  void import_identity() {
    require_outputs(1, "Identity has one output");
    alias(input(0), "Identity");
  }

  // --- constants ------------------------------------------------------------------------------

  void import_constant() {
    require_outputs(1, "Constant has one output");
    if (node().output_size() < 1 || node().output(0).empty()) fail_format("has no output");
    onnx::TensorProto& t = owned_.emplace_back();
    if (const onnx::AttributeProto* a = attr("value")) {
      if (!a->has_t()) fail_format("attribute 'value' must be a tensor");
      t = a->t();
    } else if (const onnx::AttributeProto* f = attr("value_float")) {
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_float_data(f->f());
    } else if (const onnx::AttributeProto* fs = attr("value_floats")) {
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(fs->floats_size());
      for (float v : fs->floats()) t.add_float_data(v);
    } else if (const onnx::AttributeProto* i = attr("value_int")) {
      t.set_data_type(onnx::TensorProto::INT64);
      t.add_int64_data(i->i());
    } else if (const onnx::AttributeProto* is = attr("value_ints")) {
      t.set_data_type(onnx::TensorProto::INT64);
      t.add_dims(is->ints_size());
      for (int64_t v : is->ints()) t.add_int64_data(v);
    } else {
      fail_unsupported(
          "a Constant without value, value_float(s) or value_int(s) is not "
          "supported");
    }
    t.set_name(node().output(0));
    check_tensor(t, "the value");
    constants_[node().output(0)] = &t;
  }

  void import_transpose() {
    require_outputs(1, "Transpose has one output");
    if (values_.count(input(0)))
      fail_unsupported(
          "Transpose of a computed value is not supported (only of a constant "
          "weight)");
    const onnx::TensorProto& in = constant(0, "input");
    const Shape d = dims_of(in);
    const auto perm = attr_ints("perm");
    if (d.size() != 2 || (perm && *perm != Shape{1, 0}))
      fail_unsupported("Transpose of the " + std::to_string(d.size()) + "-D constant " +
                       dims_str(d) + " is not supported (only 2-D matrices)");
    const std::vector<float> v = floats(in, "input '" + printable(input(0)) + "'");
    onnx::TensorProto& t = owned_.emplace_back();
    t.set_name(node().output(0));
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(d[1]);
    t.add_dims(d[0]);
    for (int64_t c = 0; c < d[1]; ++c)
      for (int64_t r = 0; r < d[0]; ++r) t.add_float_data(v[static_cast<size_t>(r * d[1] + c)]);
    constants_[node().output(0)] = &t;
  }

  // --- outputs and declared shapes ------------------------------------------------------------

  // A declared ONNX shape agrees with ours on every fixed dimension.
  static bool agrees(const onnx::TypeProto& type, const Shape& shape) {
    if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return true;
    const auto& s = type.tensor_type().shape();
    if (s.dim_size() != static_cast<int>(shape.size())) return false;
    for (int i = 0; i < s.dim_size(); ++i)
      if (s.dim(i).has_dim_value() && shape[static_cast<size_t>(i)] != kSymbolic &&
          s.dim(i).dim_value() != shape[static_cast<size_t>(i)])
        return false;
    return true;
  }

  static std::string declared_str(const onnx::TypeProto& type) {
    std::string s = "[";
    const auto& shape = type.tensor_type().shape();
    for (int i = 0; i < shape.dim_size(); ++i) {
      const auto& d = shape.dim(i);
      s += (i ? ", " : "") + (d.has_dim_value()   ? std::to_string(d.dim_value())
                              : d.has_dim_param() ? d.dim_param()
                                                  : "?");
    }
    return s + "]";
  }

  void check_declared(const onnx::ValueInfoProto& info, const char* kind) {
    auto it = values_.find(info.name());
    if (it == values_.end()) return;
    const Value& v = it->second;
    if (v.producer >= 0) begin_node(v.producer);
    if (info.type().has_tensor_type() && info.type().tensor_type().elem_type() != 0 &&
        info.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
      fail_unsupported(std::string(kind) + " '" + printable(info.name()) + "' is " +
                       type_name(info.type().tensor_type().elem_type()) +
                       "; the engine computes in float32 only");
    if (!agrees(info.type(), v.shape))
      fail_format(std::string(kind) + " '" + printable(info.name()) + "' is declared " +
                  declared_str(info.type()) + " but computes " + dims_str(v.shape));
    node_ = nullptr;
  }

  void check_declared_shapes() {
    for (const onnx::ValueInfoProto& out : graph_.output()) {
      if (constants_.count(out.name()))
        fail_unsupported("graph output '" + printable(out.name()) +
                         "' is a constant; the engine's outputs are computed values");
      if (!values_.count(out.name()))
        fail_format("graph output '" + printable(out.name()) + "' is not computed by any node");
      check_declared(out, "graph output");
    }
    for (const onnx::ValueInfoProto& info : graph_.value_info()) check_declared(info, "value");
  }

  // --- the graph file -------------------------------------------------------------------------

  std::string graph_name() const {
    if (!opt_.graph_name.empty()) return opt_.graph_name;
    const std::string s = sanitise(graph_.name());
    return s.empty() ? "imported" : s;
  }

  std::string render() const {
    std::ostringstream t;
    t << "# Imported from " << printable(opt_.source) << " by `engine import-onnx`: ONNX graph '"
      << printable(graph_.name()) << "', opset " << opset_;
    if (!model_.producer_name().empty())
      t << ", produced by " << printable(model_.producer_name())
        << (model_.producer_version().empty() ? "" : " ") << printable(model_.producer_version());
    t << ".\n# " << graph_.node_size() << " ONNX nodes -> " << nodes_.size()
      << " engine nodes; each line ends with the ONNX node(s) it came from (index, op, name).\n"
      << "# Weights: the safetensors file written with it, named \"<node>.<param>\".\n";
    if (batch_fixed()) t << "# The ONNX batch axis is fixed at " << batch_ << ".\n";
    for (const auto& p : model_.metadata_props())
      t << "# ONNX metadata: " << printable(p.key()) << " = " << printable(p.value()) << "\n";
    if (!notes_.empty()) {
      t << "# Notes:\n";
      for (const std::string& n : notes_) t << "#   - " << printable(n) << "\n";
    }
    t << "\n[graph]\nname = " << toml_string(graph_name()) << "\ninputs = { ";
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Value& v = values_.at(inputs_[i]);
      t << (i ? ", " : "") << toml_key(v.engine) << " = [";
      for (size_t d = 1; d < v.shape.size(); ++d) t << (d > 1 ? ", " : "") << v.shape[d];
      t << "]";
    }
    t << " }\noutputs = { ";
    for (int i = 0; i < graph_.output_size(); ++i)
      t << (i ? ", " : "") << toml_key(graph_.output(i).name()) << " = "
        << toml_string(values_.at(graph_.output(i).name()).engine);
    t << " }\nnodes = [\n";
    std::string prev;
    for (const EngineNode& n : nodes_) {
      std::string line = "  { op = " + toml_string(n.op) + ", name = " + toml_string(n.name);
      if (n.inputs.size() == 1 && n.inputs[0] != prev) {
        line += ", in = " + toml_string(n.inputs[0]);
      } else if (n.inputs.size() > 1) {
        line += ", in = [";
        for (size_t i = 0; i < n.inputs.size(); ++i)
          line += (i ? ", " : "") + toml_string(n.inputs[i]);
        line += "]";
      }
      for (const auto& [key, value] : n.attrs) line += ", " + key + " = " + value;
      t << line << " },  # " << n.comment << "\n";
      prev = n.name;
    }
    t << "]\n";
    return t.str();
  }

  bool batch_fixed() const {
    for (const std::string& in : inputs_)
      if (values_.at(in).shape[0] != kSymbolic) return true;
    return false;
  }

  static Shape engine_shape(const Value& v) {
    return v.pooled ? Shape{v.shape[0], v.shape[1]} : v.shape;
  }

  OnnxImport finish() {
    OnnxImport r;
    for (const std::string& in : inputs_) {
      const Value& v = values_.at(in);
      r.inputs.push_back({in, v.engine, v.shape, v.shape});
    }
    for (const auto& out : graph_.output()) {
      const Value& v = values_.at(out.name());
      r.outputs.push_back({out.name(), v.engine, v.shape, engine_shape(v)});
      if (v.pooled)
        notes_.push_back("graph output '" + printable(out.name()) + "' is [N, C] in the engine, " +
                         dims_str(v.shape) + " in ONNX (the same values)");
    }
    r.toml = render();
    r.notes = notes_;
    for (const auto& n : graph_.node()) r.onnx_ops.push_back(n.op_type());
    r.weights.tensors = std::move(weights_);
    r.weights.metadata["graph"] = graph_name();
    r.weights.metadata["source"] = "ONNX import of " + opt_.source;
    for (const auto& p : model_.metadata_props())
      if (p.key() == "norm_mean" || p.key() == "norm_std") {
        char* end = nullptr;
        std::strtod(p.value().c_str(), &end);
        if (!p.value().empty() && end && *end == '\0') r.weights.metadata[p.key()] = p.value();
      }
    if (inputs_.size() == 1) {
      const Shape& s = values_.at(inputs_[0]).shape;
      if (s.size() == 4 && s[2] == s[3]) r.weights.metadata["input_size"] = std::to_string(s[2]);
    }
    return r;
  }

  const onnx::ModelProto& model_;
  const onnx::GraphProto& graph_;
  const OnnxImportOptions& opt_;
  int64_t opset_ = 0;
  int64_t batch_ = 1;
  int version_ = 0;  // the current node's op version
  int index_ = -1;
  const onnx::NodeProto* node_ = nullptr;

  std::map<std::string, const onnx::TensorProto*> constants_;
  std::deque<onnx::TensorProto> owned_;  // bound inputs, Constant values, folded constants
  std::map<std::string, Value> values_;
  std::vector<std::string> inputs_;  // runtime graph inputs, in order
  std::map<std::string, int> producer_;
  std::map<std::string, std::vector<int>> consumers_;
  std::set<std::string> graph_outputs_;
  std::set<int> folded_;
  std::set<std::string> used_;

  std::vector<EngineNode> nodes_;
  std::vector<NamedTensor> weights_;
  std::vector<std::string> notes_;
};

// A directory of its own under the system temp directory, removed with the object.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "emt-onnx-import-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("ONNX import: cannot create a scratch directory in " +
                               fs::temp_directory_path().string());
    path_ = tmpl;
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The generated graph parses, compiles at the model's batch size, computes the expected output
// shapes, and takes the weights.
void check_result(const OnnxImport& r, const std::string& source) {
  const auto fail = [&](const std::string& what) -> void {
    throw OnnxFormatError(source + ": the imported graph does not check: " + what);
  };
  ScratchDir dir;
  const fs::path toml = dir.path() / "graph.toml";
  write_file_atomic(toml, r.toml);
  int64_t batch = 1;
  for (const OnnxImportIo& in : r.inputs)
    if (in.onnx_shape[0] != kSymbolic) batch = in.onnx_shape[0];
  try {
    const GraphFile file = parse_graph_file(toml);
    const Program program = compile(std::make_shared<const Graph>(file.graph), batch);
    for (const OnnxImportIo& out : r.outputs) {
      Shape want = out.engine_shape;
      if (want[0] == kSymbolic) want[0] = batch;
      const Shape& got = program.values.at(program.outputs.at(out.onnx_name)).shape;
      if (got != want)
        fail("output '" + out.onnx_name + "' is " + shape_str(got) + " in the engine, " +
             shape_str(want) + " expected");
    }
    ParamStore store;
    store.init(program, 0);
    store.load_tensors(r.weights, "the imported weights");
  } catch (const OnnxFormatError&) {
    throw;
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

}  // namespace

OnnxImport import_onnx_bytes(const std::string& model_bytes, const OnnxImportOptions& opt) {
  const onnx::ModelProto model = parse_model(model_bytes, opt.source);
  OnnxImport r = Importer(model, opt).run();
  check_result(r, opt.source);
  return r;
}

OnnxImport import_onnx(const fs::path& model, const fs::path& graph_out,
                       const fs::path& weights_out, OnnxImportOptions opt) {
  if (opt.source == OnnxImportOptions{}.source) opt.source = model.string();
  if (graph_out.empty() || weights_out.empty())
    throw std::invalid_argument("ONNX import: both output paths are needed");
  if (fs::weakly_canonical(graph_out) == fs::weakly_canonical(weights_out))
    throw std::invalid_argument("ONNX import: the graph file and the weights file are both " +
                                graph_out.string());
  std::string bytes;
  try {
    bytes = read_file(model);
  } catch (const std::exception& e) {
    throw OnnxFormatError(e.what());
  }
  OnnxImport r = import_onnx_bytes(bytes, opt);
  // Both files atomically, the weights first; should the graph file then fail, the weights
  // file is put back as it was, so that a failure leaves no half-written pair.
  std::optional<std::string> previous_weights;
  if (fs::exists(weights_out)) previous_weights = read_file(weights_out);
  write_safetensors(weights_out, r.weights);
  try {
    write_file_atomic(graph_out, r.toml);
  } catch (...) {
    std::error_code ec;
    if (previous_weights)
      write_file_atomic(weights_out, *previous_weights);
    else
      fs::remove(weights_out, ec);
    throw;
  }
  return r;
}

std::vector<std::string> onnx_weight_inputs(const std::string& model_bytes) {
  const onnx::ModelProto model = parse_model(model_bytes, "ONNX model");
  const onnx::GraphProto& g = model.graph();
  std::set<std::string> initializers, weights;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  for (const auto& n : g.node()) {
    const OpRule* r = default_domain(n.domain()) ? find_rule(n.op_type()) : nullptr;
    if (!r) continue;
    for (int i : r->weight_inputs)
      if (i < n.input_size() && !n.input(i).empty()) weights.insert(n.input(i));
  }
  std::vector<std::string> names;
  for (const auto& in : g.input())
    if (weights.count(in.name()) && !initializers.count(in.name())) names.push_back(in.name());
  return names;
}

NamedTensor onnx_float_tensor(const std::string& tensor_bytes, const std::string& what) {
  onnx::TensorProto t;
  if (!t.ParseFromString(tensor_bytes))
    throw OnnxFormatError(what + ": does not parse as an onnx.TensorProto");
  if (t.data_type() != onnx::TensorProto::FLOAT)
    throw OnnxUnsupportedError(what + ": the tensor is " + type_name(t.data_type()) +
                               ", not float32");
  NamedTensor out;
  out.name = t.name();
  out.shape.assign(t.dims().begin(), t.dims().end());
  const int64_t n = checked_numel(out.shape);
  if (n < 0) throw OnnxFormatError(what + ": invalid dims " + dims_str(out.shape));
  out.data.resize(static_cast<size_t>(n));
  if (t.has_raw_data()) {
    if (t.raw_data().size() != out.data.size() * sizeof(float))
      throw OnnxFormatError(what + ": " + std::to_string(t.raw_data().size()) +
                            " bytes of data for dims " + dims_str(out.shape));
    std::memcpy(out.data.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.float_data_size() != n)
      throw OnnxFormatError(what + ": " + std::to_string(t.float_data_size()) +
                            " values for dims " + dims_str(out.shape));
    std::copy(t.float_data().begin(), t.float_data().end(), out.data.begin());
  }
  return out;
}

}  // namespace emt
