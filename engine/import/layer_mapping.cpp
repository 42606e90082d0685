// Mapping a file's layers onto a graph by structure (see layer_mapping.h).
#include "engine/import/layer_mapping.h"

#include <map>
#include <memory>
#include <set>

namespace emt {
namespace {

std::string padding_str(const ConvPadding& p) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, wrongly) about "[" + std::to_string().
  std::string s(1, '[');
  for (int64_t v : {p.top, p.left, p.bottom, p.right}) s.append(std::to_string(v)).append(",");
  s.back() = ']';
  return s;
}

// Notes of one kind, reported once with the number of layers and the first few names.
class NoteGroups {
 public:
  void add(const std::string& kind, const std::string& layer) {
    auto [it, inserted] = groups_.try_emplace(kind);
    if (inserted) order_.push_back(kind);
    it->second.push_back(layer);
  }

  void append_to(std::vector<std::string>& notes) const {
    for (const std::string& kind : order_) {
      const std::vector<std::string>& layers = groups_.at(kind);
      std::string line = kind + " (" + std::to_string(layers.size()) +
                         (layers.size() == 1 ? " layer: " : " layers: ");
      for (size_t i = 0; i < layers.size() && i < 3; ++i) line += (i ? ", " : "") + layers[i];
      if (layers.size() > 3) line += ", ...";
      notes.push_back(line + ")");
    }
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, std::vector<std::string>> groups_;
};

// A layer that does not fit the graph's node (the structure differs).
struct Mismatch {
  std::string why;
};

}  // namespace

std::string graph_activation(const Program& p, const Step& step) {
  if (step.node->attrs.has("activation") && step.node->attrs.get_string("activation") != "none")
    return step.node->attrs.get_string("activation");
  int value = step.output;
  for (int hop = 0; hop < 2; ++hop) {
    const std::vector<int>& readers = p.values[value].consumers;
    if (readers.size() != 1) return "none";
    const Step& next = p.steps[readers[0]];
    if (next.node->id == OpId::relu || next.node->id == OpId::relu6) return next.node->op;
    if (next.node->id != OpId::batch_norm) return "none";
    value = next.output;
  }
  return "none";
}

ImportReport map_layers_onto_graph(const std::vector<SourceLayer>& layers,
                                   const std::string& source, const Model& model,
                                   std::vector<NamedTensor>& tensors,
                                   const LayerMappingOptions& opt) {
  const auto fail = [&](const std::string& what) { throw LayerMappingError(source + ": " + what); };
  if (layers.empty()) fail("has no convolution or fully connected layer");

  // Shapes and readers come from the compiled graph (batch 1, as written: no fusion).
  const Program program = compile(std::make_shared<const Graph>(model.graph()), 1);
  std::vector<const Step*> targets;
  for (const Step& step : program.steps)
    if (step.node->id == OpId::conv2d || step.node->id == OpId::dense) targets.push_back(&step);
  if (layers.size() > targets.size() && !opt.stop_at_mismatch)
    fail("has " + std::to_string(layers.size()) + " convolution / fully connected layers, graph '" +
         model.graph().name + "' only " + std::to_string(targets.size()) +
         " conv2d / dense nodes to take them");

  // Every parameter with its shape; only those written from the file are returned.
  std::vector<NamedTensor> all = model.params().to_tensors();
  std::map<std::string, NamedTensor*> by_name;
  for (NamedTensor& t : all) by_name[t.name] = &t;
  const auto param = [&](const std::string& name) -> NamedTensor* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };

  ImportReport report;
  report.tflite = source;
  report.graph = model.graph().name;
  std::set<std::string> written;
  const auto set = [&](NamedTensor* t, std::vector<float> values, const std::string& from) {
    t->data = std::move(values);
    written.insert(t->name);
    report.matched.push_back({t->name, from, t->shape});
  };
  NoteGroups notes;

  for (size_t i = 0; i < layers.size(); ++i) {
    const SourceLayer& c = layers[i];
    if (i >= targets.size()) {
      report.notes.push_back("stopped after " + std::to_string(i) + " layers: graph '" +
                             model.graph().name + "' has no further conv2d / dense node; " +
                             std::to_string(layers.size() - i) +
                             " layers of the file were not imported, from " + c.layer);
      break;
    }
    const Step& step = *targets[i];
    const Node& node = *step.node;
    const Shape& in = program.values[step.inputs[0]].shape;
    const std::string& layer = c.layer;
    const std::string ours = "node '" + node.name + "' (" + node.op + ")";
    NamedTensor* weight = param(node.name + ".weight");
    if (!weight) fail("graph node '" + node.name + "' has no weight parameter");
    const std::vector<int>& readers = program.values[step.output].consumers;
    const Step* bn = readers.size() == 1 && program.steps[readers[0]].node->id == OpId::batch_norm
                         ? &program.steps[readers[0]]
                         : nullptr;
    NamedTensor* own_bias = param(node.name + ".bias");

    // The structure: any mismatch throws Mismatch before anything of the layer is set.
    Shape shape = c.weight_shape;
    try {
      const auto mismatch = [](const std::string& why) { throw Mismatch{why}; };
      // The file's weight as the node needs it: a 1x1 convolution on a 1x1 map is a dense layer
      // and vice versa.
      const bool file_is_1x1 = shape.size() == 4 && shape[2] == 1 && shape[3] == 1;
      if (node.id == OpId::dense && file_is_1x1) {
        if (c.in_h >= 0 && (c.in_h != 1 || c.in_w != 1))
          mismatch(layer + " is a 1x1 convolution on a " + std::to_string(c.in_h) + "x" +
                   std::to_string(c.in_w) + " map; " + ours + " is a dense layer");
        shape = {shape[0], shape[1]};
      } else if (node.id == OpId::conv2d && shape.size() == 2) {
        shape = {shape[0], shape[1], 1, 1};
      }
      if (shape != weight->shape)
        mismatch(layer + " has weights " + shape_str(c.weight_shape) + " that do not fit " + ours +
                 ", whose weight is " + shape_str(weight->shape) +
                 ": the graph is not this network (layers are matched in order)");
      if (node.id == OpId::conv2d && !c.fully_connected) {
        if (c.in_channels >= 0 && in[1] != c.in_channels)
          mismatch(layer + " reads " + std::to_string(c.in_channels) + " channels, " + ours +
                   " reads " + std::to_string(in[1]));
        const int64_t groups = node.attrs.get_int("groups");
        if (c.groups >= 0 && c.groups != groups)
          mismatch(layer + " has " + std::to_string(c.groups) + " groups, " + ours + " " +
                   std::to_string(groups));
        const int64_t stride = node.attrs.get_int("stride");
        if (c.stride_h != stride || c.stride_w != stride)
          mismatch(layer + " has strides " + std::to_string(c.stride_h) + "x" +
                   std::to_string(c.stride_w) + ", " + ours + " stride " + std::to_string(stride));
      }
      if (c.bn && !bn)
        mismatch(layer + " is followed by batch norm '" + c.bn->name + "', " + ours +
                 " is not read by a batch norm alone");
      if (!c.bn && !bn && !own_bias && !c.bias_name.empty()) {
        bool zero = true;
        for (float v : c.bias) zero = zero && v == 0.0f;
        if (!zero)
          mismatch(layer + " has a bias, but " + ours +
                   " has none and is not read by a batch norm alone: nowhere to put it");
      }
    } catch (const Mismatch& m) {
      if (!opt.stop_at_mismatch || i == 0) fail(m.why);
      report.notes.push_back("stopped at " + layer + ", the " + std::to_string(i + 1) +
                             "th layer: " + m.why + "; it and the " +
                             std::to_string(layers.size() - i - 1) +
                             " layers after it were not imported");
      break;
    }

    // Padding at the graph's input size (which may differ from the file's).
    if (node.id == OpId::conv2d && !c.fully_connected && c.pad != SourceLayer::Pad::kUnchecked) {
      const int64_t k = weight->shape[2];
      const int64_t stride = node.attrs.get_int("stride");
      const ConvPadding want =
          c.pad == SourceLayer::Pad::kSameTf
              ? resolve_conv_padding(ConvPadMode::kSameTf, -1, k, stride, in[2], in[3])
          : c.pad == SourceLayer::Pad::kExplicit ? c.pads
                                                 : ConvPadding{};
      const ConvPadding have = conv2d_padding(node.attrs, in[2], in[3]);
      if (padding_str(want) != padding_str(have))
        notes.add(std::string("the file pads ") +
                      (c.pad == SourceLayer::Pad::kSameTf  ? "SAME "
                       : c.pad == SourceLayer::Pad::kValid ? "VALID "
                                                           : "") +
                      "(top, left, bottom, right " + padding_str(want) + "), the graph " +
                      padding_str(have) +
                      (c.pad == SourceLayer::Pad::kSameTf ? ": use pad_mode = \"same_tf\"" : ""),
                  node.name);
    }
    if (!c.activation.empty()) {
      const std::string act_graph = graph_activation(program, step);
      if (c.activation != act_graph)
        notes.add("the file applies " + c.activation_label + ", the graph " + act_graph, node.name);
    }
    set(weight, c.weight, c.weight_name);
    ++report.layers;

    std::vector<float> bias = c.bias;
    if (bias.empty()) bias.assign(static_cast<size_t>(shape[0]), 0.0f);
    const std::string bias_from = c.bias_name.empty() ? "0 (the file has no bias)" : c.bias_name;
    NamedTensor* gamma = nullptr;
    NamedTensor* beta = nullptr;
    NamedTensor* mean = nullptr;
    NamedTensor* var = nullptr;
    double eps = 0.0;
    if (bn) {
      const std::string name = bn->node->name;
      eps = bn->node->attrs.get_float("eps");
      gamma = param(name + ".gamma");
      beta = param(name + ".beta");
      mean = param(name + ".running_mean");
      var = param(name + ".running_var");
      if (!gamma || !beta || !mean || !var)
        fail("batch norm '" + name + "' after " + ours + " lacks its parameters");
    }

    if (c.bn) {
      // The file's own batch norm: copied; a conv bias the graph cannot hold goes into the mean
      // (BN(x + b) subtracts mean - b), an epsilon that differs into the variance.
      const SourceLayer::BatchNorm& s = *c.bn;
      if (own_bias) {
        set(own_bias, bias, bias_from);
      } else if (!c.bias_name.empty()) {
        std::vector<float> m = s.mean;
        for (size_t k = 0; k < m.size(); ++k) m[k] -= c.bias[k];
        set(gamma, s.gamma, s.name + ".scale");
        set(beta, s.beta, s.name + ".B");
        set(mean, m, s.name + ".mean - " + c.bias_name + " (the graph's conv has no bias)");
      }
      if (!written.count(gamma->name)) {
        set(gamma, s.gamma, s.name + ".scale");
        set(beta, s.beta, s.name + ".B");
        set(mean, s.mean, s.name + ".mean");
      }
      if (s.eps == eps) {
        set(var, s.var, s.name + ".var");
      } else {
        std::vector<float> v = s.var;
        for (float& x : v) x = static_cast<float>(double(x) + s.eps - eps);
        set(var, v,
            s.name + ".var + " + format_number("%.9g", s.eps) + " - " + format_number("%.9g", eps) +
                " (the file's epsilon)");
        notes.add("the file's batch norm epsilon is " + format_number("%.9g", s.eps) +
                      ", the graph's " + format_number("%.9g", eps) +
                      ": the difference went into running_var",
                  node.name);
      }
    } else {
      // Folded: the node's own bias, else the batch norm that alone reads the node.
      if (own_bias) {
        set(own_bias, bias, bias_from);
        bias.assign(bias.size(), 0.0f);  // a following batch norm, if any, adds nothing
      }
      if (bn) {
        const size_t n = bias.size();
        set(gamma, std::vector<float>(n, 1.0f),
            "1 (identity: batch norm is folded into the weight)");
        set(beta, bias,
            own_bias ? "0 (the bias went to the convolution)" : bias_from + " (folded bias)");
        set(mean, std::vector<float>(n, 0.0f), "0 (identity)");
        set(var, std::vector<float>(n, static_cast<float>(1.0 - eps)),
            "1 - eps = " + format_number("%.9g", 1.0 - eps) + " (identity in eval)");
      }
    }
    if (c.bias_scale_mismatch > 1e-3)
      notes.add("the bias scale the file stores differs from input scale x weight scale by up to " +
                    format_number("%.2g", c.bias_scale_mismatch) +
                    " (relative); the stored one was used",
                node.name);
  }

  tensors.clear();
  for (NamedTensor& t : all) {
    if (written.count(t.name))
      tensors.push_back(std::move(t));
    else
      report.initialised.push_back(t.name);
  }
  notes.append_to(report.notes);
  return report;
}

}  // namespace emt
