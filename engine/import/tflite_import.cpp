// Importing a TFLite file's convolutions into a graph's parameters (see tflite.h).
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "engine/compiler/program.h"
#include "engine/import/layer_mapping.h"
#include "engine/import/tflite.h"
#include "engine/io/safetensors.h"
#include "ops/conv2d/conv2d.h"

namespace emt {
namespace {

const auto fmt = format_number;

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
  const std::vector<TfliteConv> convs = tflite_convolutions(file, source);
  if (convs.empty())
    throw TfliteError(source + ": has no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED operator");
  std::vector<SourceLayer> layers;
  layers.reserve(convs.size());
  for (size_t i = 0; i < convs.size(); ++i) {
    const TfliteConv& c = convs[i];
    SourceLayer& l = layers.emplace_back();
    l.layer = "layer " + std::to_string(i) + " (operator " + std::to_string(c.op_index) + ", " +
              tflite_op_name(c.builtin) + " '" + c.weight_name + "')";
    l.weight_name = c.weight_name;
    l.bias_name = c.bias_name;
    l.weight_shape = c.weight_shape;
    l.weight = c.weight;
    l.bias = c.bias;
    l.fully_connected = c.builtin == tflite_op::kFullyConnected;
    if (c.input_shape.size() == 4) {
      l.in_h = c.input_shape[1];
      l.in_w = c.input_shape[2];
      if (!l.fully_connected) l.in_channels = c.input_shape[3];
    }
    l.stride_h = c.stride_h;
    l.stride_w = c.stride_w;
    if (!l.fully_connected)
      l.pad =
          c.padding == TflitePadding::kSame ? SourceLayer::Pad::kSameTf : SourceLayer::Pad::kValid;
    l.activation = file_activation(c.activation);
    l.activation_label = tflite_activation_name(c.activation);
    l.bias_scale_mismatch = c.bias_scale_mismatch;
  }
  ImportReport report;
  try {
    report = map_layers_onto_graph(layers, source, model, tensors);
  } catch (const LayerMappingError& e) {
    throw TfliteError(e.what());
  }
  std::vector<std::string> layer_notes = std::move(report.notes);
  report.notes.clear();

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
    const Program program = compile(std::make_shared<const Graph>(model.graph()), 1);
    const Shape& ours = program.values[program.value(model.graph().inputs.front().name)].shape;
    if (input.shape.size() == 4 && ours.size() == 4 &&
        (input.shape[1] != ours[2] || input.shape[2] != ours[3]))
      report.notes.push_back("the file was trained at " + std::to_string(input.shape[1]) + "x" +
                             std::to_string(input.shape[2]) + ", the graph's input is " +
                             std::to_string(ours[2]) + "x" + std::to_string(ours[3]));
  }
  report.notes.insert(report.notes.end(), layer_notes.begin(), layer_notes.end());
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
