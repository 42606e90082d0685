// Importing a TFLite file's convolutions into a graph's parameters (see tflite.h).
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "engine/compiler/program.h"
#include "engine/import/tflite.h"
#include "engine/io/safetensors.h"
#include "ops/conv2d/conv2d.h"

namespace emt {
namespace {

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

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

// The activation the graph applies to a node's output: a fused attribute, or the relu / relu6
// that is the only reader (of the batch norm that is the only reader) of it.
std::string graph_activation(const Program& p, const Step& step) {
  if (step.node->attrs.has("activation") && step.node->attrs.get_string("activation") != "none")
    return step.node->attrs.get_string("activation");
  int value = step.output;
  for (int hop = 0; hop < 2; ++hop) {
    const std::vector<int>& readers = p.values[value].consumers;
    if (readers.size() != 1) return "none";
    const Step& next = p.steps[readers[0]];
    if (next.node->op == "relu" || next.node->op == "relu6") return next.node->op;
    if (next.node->op != "batch_norm") return "none";
    value = next.output;
  }
  return "none";
}

std::string file_activation(TfliteActivation a) {
  switch (a) {
    case TfliteActivation::kNone:
      return "none";
    case TfliteActivation::kRelu:
      return "relu";
    case TfliteActivation::kRelu6:
      return "relu6";
    default:
      return tflite_activation_name(a);
  }
}

}  // namespace

std::string ImportReport::summary() const {
  std::ostringstream out;
  out << "imported " << layers << " layers of " << tflite << " into graph '" << graph
      << "': " << matched.size() << " tensors set, " << initialised.size()
      << " left at their initialisation\n";
  for (const ImportedTensor& t : matched)
    out << "  " << t.param << " " << shape_str(t.shape) << " <- " << t.source << "\n";
  if (!initialised.empty()) {
    out << "left at initialisation:";
    for (size_t i = 0; i < initialised.size(); ++i) out << (i ? ", " : " ") << initialised[i];
    out << "\n";
  }
  if (norm_std > 0)
    out << "input: the file quantises its input as (pixel - " << fmt("%.6g", norm_mean * 255.0)
        << ") * " << fmt("%.9g", 1.0 / (255.0 * norm_std))
        << ", i.e. data.norm_mean = " << fmt("%.9g", norm_mean)
        << " and data.norm_std = " << fmt("%.9g", norm_std) << " on pixel / 255\n";
  for (const std::string& note : notes) out << "note: " << note << "\n";
  return out.str();
}

ImportReport import_tflite_tensors(const TfliteModel& file, const std::string& source,
                                   const Model& model, std::vector<NamedTensor>& tensors) {
  const auto fail = [&](const std::string& what) { throw TfliteError(source + ": " + what); };
  const std::vector<TfliteConv> convs = tflite_convolutions(file, source);
  if (convs.empty()) fail("has no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED operator");

  // Shapes and readers come from the compiled graph (batch 1, as written: no fusion).
  const Program program = compile(std::make_shared<const Graph>(model.graph()), 1);
  std::vector<const Step*> targets;
  for (const Step& step : program.steps)
    if (step.node->op == "conv2d" || step.node->op == "dense") targets.push_back(&step);
  if (convs.size() > targets.size())
    fail("has " + std::to_string(convs.size()) + " convolution / fully connected layers, graph '" +
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
  report.layers = static_cast<int64_t>(convs.size());
  std::set<std::string> written;
  const auto set = [&](NamedTensor* t, std::vector<float> values, const std::string& from) {
    t->data = std::move(values);
    written.insert(t->name);
    report.matched.push_back({t->name, from, t->shape});
  };
  NoteGroups notes;

  for (size_t i = 0; i < convs.size(); ++i) {
    const TfliteConv& c = convs[i];
    const Step& step = *targets[i];
    const Node& node = *step.node;
    const Shape& in = program.values[step.inputs[0]].shape;
    const std::string layer = "layer " + std::to_string(i) + " (operator " +
                              std::to_string(c.op_index) + ", " + tflite_op_name(c.builtin) + " '" +
                              c.weight_name + "')";
    const std::string ours = "node '" + node.name + "' (" + node.op + ")";
    NamedTensor* weight = param(node.name + ".weight");
    if (!weight) fail("graph node '" + node.name + "' has no weight parameter");

    // The file's weight as the node needs it: a 1x1 convolution on a 1x1 map is a dense layer
    // and vice versa.
    Shape shape = c.weight_shape;
    const bool file_is_1x1 = shape.size() == 4 && shape[2] == 1 && shape[3] == 1;
    if (node.op == "dense" && file_is_1x1) {
      if (c.input_shape.size() == 4 && (c.input_shape[1] != 1 || c.input_shape[2] != 1))
        fail(layer + " is a 1x1 convolution on a " + std::to_string(c.input_shape[1]) + "x" +
             std::to_string(c.input_shape[2]) + " map; " + ours + " is a dense layer");
      shape = {shape[0], shape[1]};
    } else if (node.op == "conv2d" && shape.size() == 2) {
      shape = {shape[0], shape[1], 1, 1};
    }
    if (shape != weight->shape)
      fail(layer + " has weights " + shape_str(c.weight_shape) + " that do not fit " + ours +
           ", whose weight is " + shape_str(weight->shape) +
           ": the graph is not this network (layers are matched in order)");
    if (node.op == "conv2d") {
      if (c.builtin != tflite_op::kFullyConnected && in[1] != c.input_shape[3])
        fail(layer + " reads " + std::to_string(c.input_shape[3]) + " channels, " + ours +
             " reads " + std::to_string(in[1]));
      const int64_t stride = node.attrs.get_int("stride");
      if (c.builtin != tflite_op::kFullyConnected && (c.stride_h != stride || c.stride_w != stride))
        fail(layer + " has strides " + std::to_string(c.stride_h) + "x" +
             std::to_string(c.stride_w) + ", " + ours + " stride " + std::to_string(stride));
      // Padding at the graph's input size (which may differ from the file's).
      if (c.builtin != tflite_op::kFullyConnected) {
        const int64_t k = weight->shape[2];
        const ConvPadding want =
            c.padding == TflitePadding::kSame
                ? resolve_conv_padding(ConvPadMode::kSameTf, -1, k, stride, in[2], in[3])
                : ConvPadding{};
        const ConvPadding have = conv2d_padding(node.attrs, in[2], in[3]);
        if (padding_str(want) != padding_str(have))
          notes.add(std::string("the file pads ") +
                        (c.padding == TflitePadding::kSame ? "SAME" : "VALID") +
                        " (top, left, bottom, right " + padding_str(want) + "), the graph " +
                        padding_str(have) +
                        (c.padding == TflitePadding::kSame ? ": use pad_mode = \"same_tf\"" : ""),
                    node.name);
      }
    }
    const std::string act_file = file_activation(c.activation),
                      act_graph = graph_activation(program, step);
    if (act_file != act_graph)
      notes.add("the file applies " + std::string(tflite_activation_name(c.activation)) +
                    ", the graph " + act_graph,
                node.name);
    set(weight, c.weight, c.weight_name);

    // The folded bias: the node's own, else the batch norm that alone reads the node.
    std::vector<float> bias = c.bias;
    if (bias.empty()) bias.assign(static_cast<size_t>(shape[0]), 0.0f);
    const std::string bias_from = c.bias_name.empty() ? "0 (the file has no bias)" : c.bias_name;
    const std::vector<int>& readers = program.values[step.output].consumers;
    const Step* bn = readers.size() == 1 && program.steps[readers[0]].node->op == "batch_norm"
                         ? &program.steps[readers[0]]
                         : nullptr;
    if (NamedTensor* own = param(node.name + ".bias")) {
      set(own, bias, bias_from);
      bias.assign(bias.size(), 0.0f);  // a following batch norm, if any, adds nothing
    }
    if (bn) {
      const std::string name = bn->node->name;
      const double eps = bn->node->attrs.get_float("eps");
      NamedTensor* gamma = param(name + ".gamma");
      NamedTensor* beta = param(name + ".beta");
      NamedTensor* mean = param(name + ".running_mean");
      NamedTensor* var = param(name + ".running_var");
      if (!gamma || !beta || !mean || !var)
        fail("batch norm '" + name + "' after " + ours + " lacks its parameters");
      const size_t n = bias.size();
      set(gamma, std::vector<float>(n, 1.0f), "1 (identity: batch norm is folded into the weight)");
      set(beta, bias,
          param(node.name + ".bias") ? "0 (the bias went to the convolution)"
                                     : bias_from + " (folded bias)");
      set(mean, std::vector<float>(n, 0.0f), "0 (identity)");
      set(var, std::vector<float>(n, static_cast<float>(1.0 - eps)),
          "1 - eps = " + fmt("%.9g", 1.0 - eps) + " (identity in eval)");
    } else if (!param(node.name + ".bias") && !c.bias_name.empty()) {
      bool zero = true;
      for (float v : c.bias) zero = zero && v == 0.0f;
      if (!zero)
        fail(layer + " has a bias, but " + ours +
             " has none and is not read by a batch norm alone: nowhere to put it");
    }
    if (c.bias_scale_mismatch > 1e-3)
      notes.add("the bias scale the file stores differs from input scale x weight scale by up to " +
                    fmt("%.2g", c.bias_scale_mismatch) + " (relative); the stored one was used",
                node.name);
  }

  tensors.clear();
  for (NamedTensor& t : all) {
    if (written.count(t.name))
      tensors.push_back(std::move(t));
    else
      report.initialised.push_back(t.name);
  }

  // The input normalisation the file implies, and whether the graph runs at its size.
  if (!file.inputs.empty()) {
    const TfliteTensor& input = file.tensors[file.inputs[0]];
    if (input.type == static_cast<int>(TfliteType::kUint8) && !input.quantization.scale.empty() &&
        input.quantization.scale[0] > 0) {
      const double zero =
          input.quantization.zero_point.empty() ? 0.0 : double(input.quantization.zero_point[0]);
      report.norm_mean = zero / 255.0;
      report.norm_std = 1.0 / (255.0 * input.quantization.scale[0]);
    }
    const Shape& ours = program.values[program.value(model.graph().inputs.front().name)].shape;
    if (input.shape.size() == 4 && ours.size() == 4 &&
        (input.shape[1] != ours[2] || input.shape[2] != ours[3]))
      report.notes.push_back("the file was trained at " + std::to_string(input.shape[1]) + "x" +
                             std::to_string(input.shape[2]) + ", the graph's input is " +
                             std::to_string(ours[2]) + "x" + std::to_string(ours[3]));
  }
  notes.append_to(report.notes);
  return report;
}

ImportReport import_tflite_backbone(const std::filesystem::path& tflite_path, const Model& model,
                                    const std::filesystem::path& out_safetensors) {
  const TfliteModel file = read_tflite(tflite_path);
  SafetensorsFile out;
  const ImportReport report = import_tflite_tensors(file, tflite_path.string(), model, out.tensors);
  out.metadata = {{"graph", model.graph().name},
                  {"source", tflite_path.filename().string()},
                  {"imported_layers", std::to_string(report.layers)}};
  if (report.norm_std > 0) {
    out.metadata["norm_mean"] = fmt("%.17g", report.norm_mean);
    out.metadata["norm_std"] = fmt("%.17g", report.norm_std);
  }
  write_safetensors(out_safetensors, out);
  return report;
}

}  // namespace emt
