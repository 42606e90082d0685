// Reading back a run's per_image.csv (id,label,prob,predicted,dice,iou) for tables that pool or
// compare the images of several trainings.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace emt {

struct PerImageRow {
  std::string id;
  int label = 0;
  double prob = 0;  // NaN for a graph without a classifier (an empty field)
};

// The rows of dir/per_image.csv in file order. The id is everything before the last five
// fields, so an id with a comma still reads whole. Throws std::runtime_error naming the file
// and line for a row that does not parse.
std::vector<PerImageRow> read_per_image(const std::filesystem::path& dir);

}  // namespace emt
