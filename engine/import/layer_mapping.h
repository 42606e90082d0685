// Mapping an ordered list of a pretrained file's convolution / fully connected layers onto a
// graph's conv2d / dense nodes by structure, shared by the TFLite and ONNX backbone importers
// (tflite.h, onnx_backbone.h): the i-th layer of the file goes to the i-th conv2d or dense node
// of the graph in program order; shapes, channels and strides must agree.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/import/tflite.h"
#include "engine/io/format_number.h"
#include "engine/runtime/model.h"
#include "ops/conv2d/conv2d.h"

namespace emt {

// A layer of the file does not fit the graph. The message is "<source>: <why>".
class LayerMappingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One convolution or fully connected layer of a file, its weights in the engine's layout.
struct SourceLayer {
  std::string layer;                   // names it in messages: "layer 3 (operator 5, CONV_2D 'w')"
  std::string weight_name, bias_name;  // the file's tensor names; bias_name empty without bias
  Shape weight_shape;                  // conv2d's [out, in / groups, kh, kw] or dense's [out, in]
  std::vector<float> weight;
  std::vector<float> bias;  // [out], empty without bias
  bool fully_connected = false;
  int64_t in_channels = -1;      // -1: not known (not checked)
  int64_t in_h = -1, in_w = -1;  // the input map the file computes on; -1: not known
  int64_t stride_h = 1, stride_w = 1;
  int64_t groups = -1;  // -1: not checked (implied by the weight shape)

  // How the file pads: TensorFlow SAME / VALID (at the graph's input size), explicit pads, or
  // not checked.
  enum class Pad { kUnchecked, kSameTf, kValid, kExplicit } pad = Pad::kUnchecked;
  ConvPadding pads;  // kExplicit

  // "none", "relu", "relu6" or another name; empty: not checked. activation_label names it in
  // notes ("RELU6").
  std::string activation, activation_label;

  // A batch norm the file applies to the layer's output (unfolded); absent when it is folded
  // into the weights and bias.
  struct BatchNorm {
    std::string name;  // the file's node
    std::vector<float> gamma, beta, mean, var;
    double eps = 1e-5;
  };
  std::optional<BatchNorm> bn;

  double bias_scale_mismatch = 0.0;  // TFLite: see TfliteConv
};

struct LayerMappingOptions {
  // A layer that does not fit ends the mapping (noted, the rest of the graph keeps its
  // initialisation) instead of failing the import; the first layer not fitting still fails.
  bool stop_at_mismatch = false;
};

// Sets the graph's parameters from the layers: returns the report (report.tflite = source; the
// caller adds file-level notes) and, in `tensors`, the parameters set, in the model's parameter
// order. Throws LayerMappingError. Folded layers (no `bn`) follow import_tflite_backbone's
// convention: a following batch norm becomes the identity plus the folded bias.
ImportReport map_layers_onto_graph(const std::vector<SourceLayer>& layers,
                                   const std::string& source, const Model& model,
                                   std::vector<NamedTensor>& tensors,
                                   const LayerMappingOptions& opt = {});

// The activation the graph applies to a step's output: a fused attribute, or the relu / relu6
// that is the only reader (of the batch norm that is the only reader) of it; else "none".
std::string graph_activation(const Program& p, const Step& step);

}  // namespace emt
