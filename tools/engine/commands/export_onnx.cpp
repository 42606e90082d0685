// `engine export-onnx`: trained weights as an ONNX model (engine/onnx/export.h).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "engine/dsl/parser.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/export.h"
#include "engine/runtime/model.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct ExportArgs {
  std::string graph, weights, out;
  std::vector<std::string> sets;
  bool logits = false;
};

CommandRun define(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  add_graph(app, args->graph);
  app.add_option("--weights", args->weights, "the trained weights (a run's weights.safetensors)")
      ->type_name("W")
      ->required();
  app.add_option("-o,--out", args->out, "the ONNX file to write (atomically)")
      ->type_name("FILE")
      ->required();
  app.add_flag("--logits", args->logits, "also output cls_logit / seg_logit (before the sigmoid)");
  add_settings(app, args->sets);
  return [args](const CommonArgs&) {
    const GraphFile file = parse_graph_file(args->graph, args->sets);
    Model model(file, 1);
    model.params().load_tensors(read_safetensors(args->weights), args->weights);
    export_onnx(model, args->out, {args->logits, &file.config});
    std::cerr << "wrote " << args->out << "\n";
  };
}

}  // namespace

Command export_onnx_command() {
  return {"export-onnx", "write trained weights as an ONNX model",
          "write an ONNX model (opset 13, dynamic batch, inference semantics) that passes the "
          "ONNX checker; inputs and outputs named as in the graph",
          define};
}

}  // namespace emt::cli
