// The dataset a run trains and evaluates on, preprocessed to the graph's input size, and its
// seeded stratified split.
#pragma once

#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/data/split.h"
#include "engine/dsl/config.h"

namespace emt {

struct Dataset {
  std::string description;  // "phantom: 240 images (96 malignant), seed 42"
  std::vector<Sample> samples;
  SplitIndices split;
};

// Reads [data]: "phantom" generates the synthetic set; other sources are not supported yet and
// give an error naming the setting. channels comes from the graph's image input.
Dataset load_dataset(const Config& config, int channels);

}  // namespace emt
