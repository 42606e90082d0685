// ONNX import, elementwise ops: Relu, Sigmoid, Add, Clip, Dropout and Identity.
#include <algorithm>
#include <limits>

#include "engine/onnx/importer.h"

namespace emt::onnx_import {

namespace {

bool broadcastable(const Shape& a, const Shape& b) {
  for (size_t i = 1; i <= std::min(a.size(), b.size()); ++i) {
    const int64_t x = a[a.size() - i], y = b[b.size() - i];
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

}  // namespace

void Importer::import_unary(const std::string& op) {
  const Value& x = runtime(0, "input", true);
  require_outputs(1, node().op_type() + " has one output");
  const std::string name = engine_name(index_, op);
  emit(op, name, {x.engine}, {}, {index_});
  define(0, {name, x.shape, x.pooled});
}

void Importer::import_add() {
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

void Importer::import_clip() {
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

void Importer::import_dropout() {
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

void Importer::import_identity() {
  require_outputs(1, "Identity has one output");
  alias(input(0), "Identity");
}

void Importer::import_relu() { import_unary("relu"); }

void Importer::import_sigmoid() { import_unary("sigmoid"); }

}  // namespace emt::onnx_import
