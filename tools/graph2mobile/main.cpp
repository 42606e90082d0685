// graph2mobile: compiles a graph file and trained weights into the mobile model the
// dependency-free runtime (mobile/runtime.h) runs on a phone.
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "engine/eval/trained_weights.h"
#include "engine/io/safetensors.h"
#include "engine/mobile/lower.h"
#include "engine/mobile/verify.h"
#include "mobile/runtime.h"

namespace {

constexpr const char* kUsage =
    R"(usage: graph2mobile GRAPH.toml --weights W.safetensors -o MODEL.emtm [--set KEY=VALUE]...

Lowers GRAPH with the trained weights W (a run's weights.safetensors) to a mobile model: the
inference graph with batch norms folded into the convolutions and activations fused, the
objective's loss terms, the weights, and the preprocessing settings stored with W (input size,
normalisation, threshold). The file is written atomically. Prints the steps, the weight size and
the runtime's activation arena for one image, then runs the written model with the mobile runtime
and the engine on 8 phantom images and prints how far their outputs differ.

options:
  --weights W      trained weights (required); their input_size and normalisation apply
  -o FILE          the mobile model to write (required)
  --set KEY=VALUE  override a setting of the graph file (repeatable)
  --fp16-weights   store the weights as float16: half the file, each weight rounded to 11
                   significant bits (the runtime computes in float32 as ever); the check below
                   then measures what the rounding costs
  -h, --help       this text
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "graph2mobile: " << message << "\n(run 'graph2mobile --help' for usage)\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string graph, weights, out;
  std::vector<std::string> sets;
  bool fp16_weights = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--weights") {
      weights = value();
    } else if (arg == "-o") {
      out = value();
    } else if (arg == "--set") {
      sets.push_back(value());
    } else if (arg == "--fp16-weights") {
      fp16_weights = true;
    } else if (arg.rfind("-", 0) == 0) {
      usage_error("unknown option '" + arg + "'");
    } else if (graph.empty()) {
      graph = arg;
    } else {
      usage_error("takes one graph file, got '" + graph + "' and '" + arg + "'");
    }
  }
  if (graph.empty() || weights.empty() || out.empty())
    usage_error("needs GRAPH.toml, --weights W and -o FILE");
  try {
    const emt::GraphFile file = emt::parse_graph_for_weights(graph, weights, sets);
    const emt::SafetensorsFile trained = emt::read_safetensors(weights);
    emt::mobile::Artifact lowered = emt::lower_to_mobile(file, trained, weights);
    if (fp16_weights) lowered.weight_storage = emt::mobile::WeightStorage::kF16;
    emt::mobile::write_artifact(lowered, out);
    // What a phone will load, float16 rounding included.
    const emt::mobile::Artifact artifact = emt::mobile::read_artifact(out);
    const emt::mobile::Runtime runtime(artifact, 1);
    std::cerr << "wrote " << out << ": " << artifact.steps.size() << " steps, "
              << static_cast<double>(std::filesystem::file_size(out)) / 1e6
              << " MB file (weights in " << (fp16_weights ? "float16" : "float32")
              << "), activation arena " << static_cast<double>(runtime.arena_floats()) * 4 / 1e6
              << " MB for one image\n";
    const emt::MobileCheck check = emt::check_against_engine(file, trained, artifact);
    std::cerr << "checked against the engine on " << check.images
              << " phantom images: max |difference| " << check.max_cls_diff
              << " (malignancy probability), " << check.max_seg_diff << " (mask probabilities); "
              << 100 * check.mask_agreement << "% of mask pixels on the same side of 0.5\n";
  } catch (const std::exception& e) {
    std::cerr << "graph2mobile: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
