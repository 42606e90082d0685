#include "engine/eval/trained_weights.h"

#include <cmath>
#include <stdexcept>

namespace emt {
namespace {

namespace fs = std::filesystem;

// A metadata value of the weights file parsed as a number, or nullopt when absent.
std::optional<double> metadata_number(const SafetensorsFile& file, const fs::path& path,
                                      const std::string& key) {
  const auto it = file.metadata.find(key);
  if (it == file.metadata.end()) return std::nullopt;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error(path.string() + ": metadata " + key + " = '" + it->second +
                           "' is not a number");
}

}  // namespace

TrainedWeights load_trained_weights(const fs::path& path, Config& config,
                                    std::optional<double> threshold) {
  TrainedWeights weights{read_safetensors(path), 0.0, "--threshold"};
  const int64_t input_size = config.get_int("data.input_size");
  if (const auto trained = metadata_number(weights.file, path, "input_size");
      trained && static_cast<int64_t>(*trained) != input_size) {
    const std::string trained_size = std::to_string(static_cast<int64_t>(*trained));
    throw std::runtime_error(path.string() + ": the weights were trained at input_size " +
                             trained_size + " but the graph is set to " +
                             std::to_string(input_size) +
                             "; pass --set data.input_size=" + trained_size);
  }
  const SourceLoc from_weights{path.string() + " (metadata)", 0, 0};
  for (const char* key : {"norm_mean", "norm_std"}) {
    if (const auto v = metadata_number(weights.file, path, key))
      config.set(std::string("data.") + key, AttrValue{*v}, from_weights);
  }
  if (threshold) {
    weights.threshold = *threshold;
  } else if (const auto t = metadata_number(weights.file, path, "threshold")) {
    weights.threshold = *t;
    weights.threshold_source = "weights metadata";
  } else {
    weights.threshold = config.get_float("eval.threshold");
    weights.threshold_source = "eval.threshold";
  }
  return weights;
}

std::vector<std::string> weights_settings(const fs::path& weights) {
  const SafetensorsFile file = read_safetensors(weights);
  std::vector<std::string> settings;
  for (const char* key : {"input_size", "norm_mean", "norm_std"}) {
    const auto it = file.metadata.find(key);
    if (it != file.metadata.end())
      settings.push_back(std::string("data.") + key + "=" + it->second);
  }
  return settings;
}

GraphFile parse_graph_for_weights(const fs::path& graph, const fs::path& weights,
                                  const std::vector<std::string>& sets) {
  std::vector<std::string> settings = weights_settings(weights);
  settings.insert(settings.end(), sets.begin(), sets.end());
  return parse_graph_file(graph, settings);
}

}  // namespace emt
