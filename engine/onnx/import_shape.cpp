// ONNX import, pooling and shapes: GlobalAveragePool (with the Flatten or Reshape to [N, C]
// after it folded in), Flatten and Reshape of what is already [N, C], and the constants --
// Constant nodes and Transpose of a constant matrix.
#include "engine/onnx/importer.h"

namespace emt::onnx_import {

// Whether node `j` (a Flatten or Reshape) turns `in` ([N, C, 1, 1] or [N, C]) into [N, C].
bool Importer::flattens_to_2d(int j, const Shape& in) {
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

void Importer::import_global_avg_pool() {
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

void Importer::import_reshape() {
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

void Importer::import_constant() {
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

void Importer::import_transpose() {
  require_outputs(1, "Transpose has one output");
  if (values_.count(input(0)))
    fail_unsupported(
        "Transpose of a computed value is not supported (only of a constant "
        "weight)");
  const onnx::TensorProto& in = constant(0, "input");
  const Shape d = dims_of(in);
  const auto perm = attr_ints("perm");
  if (d.size() != 2 || (perm && *perm != Shape{1, 0}))
    fail_unsupported("Transpose of the " + std::to_string(d.size()) + "-D constant " + dims_str(d) +
                     " is not supported (only 2-D matrices)");
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

}  // namespace emt::onnx_import
