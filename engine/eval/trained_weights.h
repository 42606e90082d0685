// A trained weights file with the settings `engine run` stored in its metadata (input_size,
// norm_mean, norm_std, threshold), shared by every command that runs trained weights (eval,
// predict), so that they all preprocess and threshold as training did.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/dsl/config.h"
#include "engine/dsl/parser.h"
#include "engine/io/safetensors.h"

namespace emt {

struct TrainedWeights {
  SafetensorsFile file;
  double threshold = 0.5;
  std::string threshold_source;  // "--threshold", "weights metadata" or "eval.threshold"
};

// Reads the weights at `path`; refuses (std::runtime_error naming the file and the --set to
// pass) metadata whose input_size differs from config's data.input_size; sets data.norm_mean and
// data.norm_std in config from the metadata; the threshold is `threshold` if given, else the
// metadata's, else eval.threshold. A non-numeric metadata value is a std::runtime_error.
TrainedWeights load_trained_weights(const std::filesystem::path& path, Config& config,
                                    std::optional<double> threshold);

// "data.input_size=N", "data.norm_mean=M", "data.norm_std=S" from the weights' metadata (those
// present), for the command line to apply before its own --set assignments when parsing GRAPH.
std::vector<std::string> weights_settings(const std::filesystem::path& weights);

// GRAPH parsed with weights_settings(weights) and then `sets`: the graph at the input size and
// normalisation the weights were trained with, unless the command line says otherwise.
GraphFile parse_graph_for_weights(const std::filesystem::path& graph,
                                  const std::filesystem::path& weights,
                                  const std::vector<std::string>& sets);

}  // namespace emt
