// Importing an ONNX model's convolutions into a graph's parameters (see onnx_backbone.h).
#include "engine/import/onnx_backbone.h"

#include <map>
#include <memory>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/import.h"
#include "ops/conv2d/conv2d.h"

namespace emt {

namespace fs = std::filesystem;

std::vector<SourceLayer> onnx_backbone_layers(const std::string& model_bytes,
                                              const std::string& source) {
  OnnxImportOptions opt;
  opt.source = source;
  const OnnxImport imported = import_onnx_bytes(model_bytes, opt);
  std::map<std::string, const NamedTensor*> weights;
  for (const NamedTensor& t : imported.weights.tensors) weights[t.name] = &t;
  const auto tensor = [&](const std::string& name) -> const NamedTensor* {
    auto it = weights.find(name);
    return it == weights.end() ? nullptr : it->second;
  };

  const GraphFile file = parse_graph_text(imported.toml, imported.toml_name);
  const Program program = compile(std::make_shared<const Graph>(file.graph), 1);
  std::vector<SourceLayer> layers;
  for (const Step& step : program.steps) {
    const Node& node = *step.node;
    if (node.id != OpId::conv2d && node.id != OpId::dense) continue;
    const NamedTensor* w = tensor(node.name + ".weight");
    if (!w) throw OnnxFormatError(source + ": node '" + node.name + "' has no weight");
    SourceLayer& l = layers.emplace_back();
    l.layer = "ONNX layer " + std::to_string(layers.size() - 1) + " ('" + node.name + "', " +
              (node.id == OpId::conv2d ? "Conv" : "Gemm") + ")";
    l.weight_name = w->name;
    l.weight_shape = w->shape;
    l.weight = w->data;
    if (const NamedTensor* b = tensor(node.name + ".bias")) {
      l.bias_name = b->name;
      l.bias = b->data;
    }
    const Shape& in = program.values[step.inputs[0]].shape;
    if (node.id == OpId::conv2d) {
      l.in_channels = in[1];
      l.in_h = in[2];
      l.in_w = in[3];
      l.stride_h = l.stride_w = node.attrs.get_int("stride");
      l.groups = node.attrs.get_int("groups");
      l.pad = SourceLayer::Pad::kExplicit;
      l.pads = conv2d_padding(node.attrs, in[2], in[3]);
    } else {
      l.fully_connected = true;
    }
    l.activation = l.activation_label = graph_activation(program, step);

    const std::vector<int>& readers = program.values[step.output].consumers;
    if (readers.size() == 1 && program.steps[readers[0]].node->id == OpId::batch_norm) {
      const Node& bn = *program.steps[readers[0]].node;
      SourceLayer::BatchNorm& s = l.bn.emplace();
      s.name = bn.name;
      s.eps = bn.attrs.get_float("eps");
      const std::pair<const char*, std::vector<float>*> parts[] = {{"gamma", &s.gamma},
                                                                   {"beta", &s.beta},
                                                                   {"running_mean", &s.mean},
                                                                   {"running_var", &s.var}};
      for (const auto& [param, out] : parts) {
        const NamedTensor* t = tensor(bn.name + "." + param);
        if (!t) throw OnnxFormatError(source + ": batch norm '" + bn.name + "' has no " + param);
        *out = t->data;
      }
    }
  }
  return layers;
}

ImportReport import_onnx_backbone_tensors(const std::string& model_bytes, const std::string& source,
                                          const Model& model, std::vector<NamedTensor>& tensors) {
  const std::vector<SourceLayer> layers = onnx_backbone_layers(model_bytes, source);
  LayerMappingOptions opt;
  opt.stop_at_mismatch = true;
  return map_layers_onto_graph(layers, source, model, tensors, opt);
}

ImportReport import_onnx_backbone(const fs::path& onnx, const Model& model,
                                  const fs::path& out_safetensors) {
  SafetensorsFile out;
  const ImportReport report =
      import_onnx_backbone_tensors(read_file(onnx), onnx.string(), model, out.tensors);
  out.metadata = {{"graph", model.graph().name},
                  {"source", onnx.filename().string()},
                  {"imported_layers", std::to_string(report.layers)}};
  write_safetensors(out_safetensors, out);
  return report;
}

}  // namespace emt
