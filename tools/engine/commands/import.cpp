// `engine import-onnx` (a whole model into a graph file and weights) and `engine
// import-onnx-backbone` / `engine import-tflite` (a model's convolutions onto a graph's).
#include "engine/onnx/import.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "engine/dsl/parser.h"
#include "engine/import/onnx_backbone.h"
#include "engine/import/tflite.h"
#include "engine/runtime/model.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct ImportArgs {
  std::string model, graph_out, weights_out;
};

CommandRun define_import(CLI::App& app) {
  auto args = std::make_shared<ImportArgs>();
  app.add_option("MODEL", args->model, "the ONNX model")->required();
  app.add_option("-o,--out", args->graph_out, "the graph file to write (atomically)")
      ->type_name("GRAPH")
      ->required();
  app.add_option("--weights-out", args->weights_out,
                 "the weights file to write (safetensors, written atomically)")
      ->type_name("W")
      ->required();
  return [args](const CommonArgs&) {
    // Both files are written only when the whole import succeeds.
    const OnnxImport imported = import_onnx(args->model, args->graph_out, args->weights_out);
    for (const std::string& note : imported.notes) std::cerr << "note: " << note << "\n";
    std::cerr << "wrote " << args->graph_out << " (" << imported.onnx_ops.size()
              << " ONNX nodes) and " << args->weights_out << " (" << imported.weights.tensors.size()
              << " tensors)\n";
  };
}

struct BackboneArgs {
  std::string model, graph, out;
  std::vector<std::string> sets;
};

using BackboneImport = ImportReport (*)(const std::filesystem::path& model, const Model& graph,
                                        const std::filesystem::path& out);

// MODEL GRAPH -o W.safetensors, for a model file of the kind `read` reads.
std::function<CommandRun(CLI::App&)> define_backbone(std::string model_kind, BackboneImport read) {
  return [model_kind, read](CLI::App& app) -> CommandRun {
    auto args = std::make_shared<BackboneArgs>();
    app.add_option("MODEL", args->model, "the " + model_kind + " model")->required();
    app.add_option("GRAPH", args->graph, "the graph file whose parameters to initialise")
        ->required();
    app.add_option("-o,--out", args->out, "the safetensors file to write (atomically)")
        ->type_name("W")
        ->required();
    add_settings(app, args->sets);
    return [args, read](const CommonArgs&) {
      const GraphFile file = parse_graph_file(args->graph, args->sets);
      // What the file lacks gets the initialisation `engine run` would give it.
      const Model model(file, static_cast<uint64_t>(file.config.get_int("train.seed")));
      std::cout << read(args->model, model, args->out).summary();
      std::cerr << "wrote " << args->out << "\n";
    };
  };
}

}  // namespace

Command import_onnx_command() {
  return {"import-onnx", "convert an ONNX model made of the engine's ops into a graph file",
          "convert an ONNX model made of the engine's ops (Conv, ConvTranspose, "
          "BatchNormalization, Relu, Clip(0,6), Add, GlobalAveragePool, Gemm/MatMul, Sigmoid, "
          "Dropout) into a graph file (one node per line, inputs and outputs named as in the "
          "model) and its weights; an unsupported op or attribute is one error naming the node, "
          "and then nothing is written",
          define_import};
}

Command import_onnx_backbone_command() {
  return {"import-onnx-backbone", "initialise a graph's parameters from an ONNX model",
          "initialise GRAPH's parameters from an ONNX model's convolutions (Conv, batch norm "
          "copied or, when folded into the bias, made identity + bias), in order onto the "
          "graph's conv2d/dense nodes, stopping at the first that does not fit",
          define_backbone("ONNX", &import_onnx_backbone)};
}

Command import_tflite_command() {
  return {"import-tflite", "initialise a graph's parameters from a TensorFlow Lite model",
          "initialise GRAPH's parameters from a TensorFlow Lite model (e.g. the MobileNetV1 "
          "files in ../shared/models): its convolutions, dequantised, batch norm folded in, onto "
          "the graph's conv2d/dense nodes in order (stem, ds1.dw, ds1.pw, ...); every other "
          "tensor keeps its initialisation (train.seed). Prints what went where and where the "
          "graph computes differently (graphs/emtnet_pretrained.toml matches the MobileNetV1 "
          "files: ReLU6, TF SAME padding). Train from it with --set train.init_weights=W",
          define_backbone("TensorFlow Lite", &import_tflite_backbone)};
}

}  // namespace emt::cli
