// ONNX import, dense layers: Gemm, and MatMul by a constant (with the Add of a bias folded in).
#include "engine/onnx/importer.h"

namespace emt::onnx_import {

namespace {

// [M, K] from B [K, M] (or B itself when it is already [M, K]).
std::vector<float> to_dense_weight(std::vector<float> b, int64_t k, int64_t m, bool already_mk) {
  if (already_mk) return b;
  std::vector<float> w(b.size());
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < m; ++c)
      w[static_cast<size_t>(c * k + r)] = b[static_cast<size_t>(r * m + c)];
  return w;
}

}  // namespace

// A bias for `outputs` features from a constant that broadcasts along the batch: [], [1],
// [M] or [1, M].
std::vector<float> Importer::row_bias(const onnx::TensorProto& t, int64_t outputs, int64_t batch,
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

void Importer::import_gemm() {
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
    fail_format("B " + dims_str(bd) + (trans_b ? " (transB = 1)" : "") + " does not fit input A " +
                dims_str(a.shape));
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

void Importer::emit_dense(const Value& a, int64_t m, int64_t k, std::vector<float> weight,
                          std::optional<std::vector<float>> bias,
                          const std::vector<int>& onnx_nodes, int output_of_last) {
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

void Importer::import_matmul() {
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

}  // namespace emt::onnx_import
