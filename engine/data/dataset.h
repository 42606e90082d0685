// The dataset a run trains and evaluates on, preprocessed to the graph's input size, and its
// seeded stratified split.
#pragma once

#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/data/readers.h"
#include "engine/data/split.h"
#include "engine/dsl/config.h"

namespace emt {

struct Dataset {
  std::string description;  // "phantom: 240 images (96 malignant), seed 42"
  std::vector<Sample> samples;
  SplitIndices split;
  std::vector<ReadIssue> skipped;  // bad files left out (data.strict = false)
};

// Reads [data]: "phantom" generates the synthetic set; a folder is read as the BUSI layout and a
// .csv file as a manifest. Real images are grouped by near-duplicate detection (joined with the
// manifest's group column) and split so no group straddles splits. channels comes from the
// graph's image input.
Dataset load_dataset(const Config& config, int channels);

}  // namespace emt
