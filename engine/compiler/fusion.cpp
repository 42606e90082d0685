#include "engine/compiler/fusion.h"

#include <cmath>
#include <numeric>
#include <stdexcept>

#include "ops/registry.h"

namespace emt {
namespace {

bool is_conv(OpId op) { return op == OpId::conv2d || op == OpId::conv_transpose2d; }
bool is_activation(OpId op) { return op == OpId::relu || op == OpId::relu6; }

// What one convolution absorbs: step indices, -1 for none; for a skip addition, also the
// addition's other operand, which the convolution then reads as its residual.
struct Absorbed {
  int bn = -1, act = -1, add = -1;
  int residual = -1;
};

class Fuser {
 public:
  explicit Fuser(Program& p) : p_(p), standin_(p.values.size()), pinned_(p.values.size(), false) {
    std::iota(standin_.begin(), standin_.end(), 0);
    // Values someone reads by name after the forward must survive.
    for (const auto& [name, v] : p_.outputs) pinned_[v] = true;
    for (const LossTerm& t : p_.graph->objective.terms) {
      pinned_[p_.value(t.input)] = true;
      pinned_[p_.value(t.target)] = true;
    }
  }

  void run() {
    std::vector<bool> removed(p_.steps.size(), false);
    std::vector<Absorbed> absorbed(p_.steps.size());
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const Step& step = p_.steps[s];
      if (step.node->id == OpId::dropout) {
        // Steps run in topological order, so the input's stand-in is already final.
        standin_[step.output] = standin_[step.inputs[0]];
        removed[s] = true;
        p_.elided_nodes.push_back(step.node->name);
        continue;
      }
      if (!is_conv(step.node->id)) continue;
      Absorbed& a = absorbed[s];
      int reader = sole_reader(step.output);
      if (reader >= 0 && p_.steps[reader].node->id == OpId::batch_norm) {
        a.bn = reader;
        reader = sole_reader(p_.steps[reader].output);
      }
      if (reader >= 0 && is_activation(p_.steps[reader].node->id)) a.act = reader;
      if (a.bn >= 0) removed[a.bn] = true;
      if (a.act >= 0) removed[a.act] = true;
      absorb_skip_addition(static_cast<int>(s), a);
      if (a.add >= 0) removed[a.add] = true;
    }
    rebuild(removed, absorbed);
    p_.fused = true;
  }

 private:
  // The step reading v when it is the only reader and v need not survive; -1 otherwise.
  int sole_reader(int v) const {
    const std::vector<int>& readers = p_.values[v].consumers;
    return !pinned_[v] && readers.size() == 1 ? readers[0] : -1;
  }

  // A skip addition reading the convolution's (or its absorbed activation's) output as its only
  // reader becomes a binary post-op of a oneDNN convolution (fp32 plans): dst = act(conv) + the
  // other operand, one pass over the output instead of two. The other operand must exist
  // before the convolution runs.
  void absorb_skip_addition(int s, Absorbed& a) const {
    const Step& step = p_.steps[s];
    if (step.node->id != OpId::conv2d || step.impl != "onednn" || p_.precision != Precision::kFp32)
      return;
    const int last = a.act >= 0  ? p_.steps[a.act].output
                     : a.bn >= 0 ? p_.steps[a.bn].output
                                 : step.output;
    const int reader = sole_reader(last);
    if (reader < 0 || p_.steps[reader].node->id != OpId::add) return;
    const std::vector<int>& operands = p_.steps[reader].inputs;
    const int other = operands[0] == last ? operands[1] : operands[0];
    const int producer = p_.values[other].producer;
    if (other == last || producer >= s) return;
    a.add = reader;
    a.residual = other;
  }

  // The convolution takes over its absorbed steps: their output, their params, an activation,
  // a residual.
  void absorb(Step& conv, const Absorbed& a) {
    if (a.bn < 0 && a.act < 0 && a.add < 0) return;
    Attrs attrs = conv.node->attrs;
    if (a.bn >= 0) {
      const Step& bn = p_.steps[a.bn];
      // The fold's shift is a bias even when the convolution had none.
      attrs.set("bias", true);
      BatchNormFold fold;
      fold.weight = conv.params.at(0);
      fold.bias = conv.params.size() > 1 ? conv.params[1] : -1;
      fold.gamma = bn.params.at(0);  // batch_norm's params: gamma, beta, running mean, var
      fold.beta = bn.params.at(1);
      fold.mean = bn.params.at(2);
      fold.var = bn.params.at(3);
      fold.eps = bn.node->attrs.get_float("eps");
      fold.channel_axis = conv.node->id == OpId::conv_transpose2d ? 1 : 0;
      conv.params.insert(conv.params.end(), bn.params.begin(), bn.params.end());
      conv.fold = fold;
      conv.fused.push_back(bn.node);
      conv.output = bn.output;
    }
    if (a.act >= 0) {
      const Step& act = p_.steps[a.act];
      attrs.set("activation", act.node->op);
      conv.fused.push_back(act.node);
      conv.output = act.output;
    }
    std::vector<Shape> in_shapes;
    for (int v : conv.inputs) in_shapes.push_back(p_.values[v].shape);
    // The node compiled with these shapes, so only a bad fusion could make this throw.
    conv.op = find_op_schema(conv.node->op)->create(attrs);
    conv.macs_per_sample = conv.op->infer(in_shapes).macs_per_sample;
    conv.impl = "reference";
    conv.dispatch_note.clear();
    choose_variant(conv, p_.backend, attrs, in_shapes);
    if (a.add >= 0) {
      // Only the oneDNN convolution takes a residual, and it ran this node before the fusion.
      if (conv.impl != "onednn")
        throw std::logic_error("fused skip addition on a non-oneDNN convolution: " +
                               conv.node->name);
      const Step& add = p_.steps[a.add];
      conv.inputs.push_back(a.residual);
      conv.fused.push_back(add.node);
      conv.output = add.output;
    }
  }

  // Drops the removed steps and every value nothing produces any more, renumbering the rest.
  void rebuild(const std::vector<bool>& removed, const std::vector<Absorbed>& absorbed) {
    std::vector<int> renumbered(p_.values.size(), -1);
    std::vector<ValueInfo> values;
    for (size_t v = 0; v < p_.values.size(); ++v) {
      if (p_.values[v].kind == ValueKind::kActivation) continue;
      renumbered[v] = static_cast<int>(values.size());
      values.push_back(p_.values[v]);
    }
    std::vector<Step> steps;
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      if (removed[s]) continue;
      Step step = std::move(p_.steps[s]);
      absorb(step, absorbed[s]);
      for (int& v : step.inputs) v = renumbered[standin_[v]];
      ValueInfo out = p_.values[step.output];
      out.producer = static_cast<int>(steps.size());
      out.consumers.clear();
      renumbered[step.output] = static_cast<int>(values.size());
      step.output = renumbered[step.output];
      values.push_back(std::move(out));
      steps.push_back(std::move(step));
    }
    for (size_t s = 0; s < steps.size(); ++s)
      for (int v : steps[s].inputs) values[v].consumers.push_back(static_cast<int>(s));

    std::map<std::string, int> index;
    for (const auto& [name, v] : p_.value_index)
      if (renumbered[standin_[v]] >= 0) index[name] = renumbered[standin_[v]];
    for (auto& [name, v] : p_.outputs) v = renumbered[standin_[v]];
    p_.values = std::move(values);
    p_.value_index = std::move(index);
    p_.steps = std::move(steps);
  }

  Program& p_;
  std::vector<int> standin_;  // per value, the value read in its place (dropout's input)
  std::vector<bool> pinned_;
};

}  // namespace

void fuse_for_inference(Program& program) {
  if (!program.fused) Fuser(program).run();
}

void fold_batch_norm(const Shape& weight_shape, int channel_axis, double eps, const float* weight,
                     const float* bias, const float* gamma, const float* beta, const float* mean,
                     const float* var, float* folded_weight, float* folded_bias) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < channel_axis; ++i) outer *= weight_shape[i];
  for (size_t i = channel_axis + 1; i < weight_shape.size(); ++i) inner *= weight_shape[i];
  const int64_t channels = weight_shape[channel_axis];
  for (int64_t c = 0; c < channels; ++c) {
    const double scale = static_cast<double>(gamma[c]) / std::sqrt(double(var[c]) + eps);
    const double b = bias ? bias[c] : 0.0;
    folded_bias[c] = static_cast<float>((b - mean[c]) * scale + beta[c]);
    for (int64_t o = 0; o < outer; ++o) {
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        folded_weight[base + i] = static_cast<float>(weight[base + i] * scale);
    }
  }
}

std::string fusion_label(const Step& step) {
  const std::string& name = step.node->name;
  std::string label = name;
  for (const Node* n : step.fused) {
    // The longest shared prefix that ends at a '.': "backbone.ds1.dw." for dw.conv and dw.bn.
    size_t common = 0;
    for (size_t i = 0; i < std::min(name.size(), n->name.size()) && name[i] == n->name[i]; ++i)
      if (name[i] == '.') common = i + 1;
    label += " + " + n->name.substr(common);
  }
  return label;
}

}  // namespace emt
