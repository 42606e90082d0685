#include "engine/experiments/per_image_table.h"

#include <limits>
#include <sstream>
#include <stdexcept>

#include "engine/io/atomic_file.h"
#include "engine/train/run.h"

namespace emt {

std::vector<PerImageRow> read_per_image(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kPerImageFile;
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);  // header
  std::vector<PerImageRow> rows;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    // The five fields after the id: label, prob, predicted, dice, iou.
    size_t cut[5];
    size_t end = line.size();
    for (int k = 4; k >= 0; --k) {
      end = end == 0 ? std::string::npos : line.rfind(',', end - 1);
      if (end == std::string::npos)
        throw std::runtime_error(path.string() + ":" + std::to_string(number) +
                                 ": fewer than six fields: " + line);
      cut[k] = end;
    }
    PerImageRow row;
    row.id = line.substr(0, cut[0]);
    const std::string label = line.substr(cut[0] + 1, cut[1] - cut[0] - 1);
    const std::string prob = line.substr(cut[1] + 1, cut[2] - cut[1] - 1);
    try {
      row.label = std::stoi(label);
      row.prob = prob.empty() ? std::numeric_limits<double>::quiet_NaN() : std::stod(prob);
    } catch (const std::exception&) {
      throw std::runtime_error(path.string() + ":" + std::to_string(number) +
                               ": label or prob is not a number: " + line);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace emt
