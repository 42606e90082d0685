#include "engine/runtime/batch.h"

#include <algorithm>
#include <stdexcept>

namespace emt {
namespace {

void copy_rows(Tensor dst, std::span<const Sample* const> samples, const char* what,
               const std::vector<float> Sample::*field) {
  const int64_t per_sample = dst.numel() / dst.dim(0);
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::vector<float>& src = samples[i]->*field;
    if (static_cast<int64_t>(src.size()) != per_sample)
      throw std::runtime_error("sample '" + samples[i]->id + "': " + what + " has " +
                               std::to_string(src.size()) + " values, the graph expects " +
                               std::to_string(per_sample) + " " + shape_str(dst.shape));
    std::copy(src.begin(), src.end(), dst.data + static_cast<int64_t>(i) * per_sample);
  }
}

}  // namespace

void load_batch(Executor& exec, std::span<const Sample* const> samples) {
  const Program& program = exec.program();
  if (static_cast<int64_t>(samples.size()) != program.batch)
    throw std::logic_error("load_batch: batch size mismatch");
  copy_rows(exec.value(kImageInput), samples, "the image", &Sample::image);
  for (const GraphInput& target : program.graph->targets) {
    Tensor t = exec.value(target.name);
    if (target.name == kLabelTarget) {
      for (size_t i = 0; i < samples.size(); ++i) t.data[i] = static_cast<float>(samples[i]->label);
    } else if (target.name == kMaskTarget) {
      copy_rows(t, samples, "the mask", &Sample::mask);
    } else {
      throw std::runtime_error("graph target '" + target.name +
                               "' is not one the data provides (label, mask)");
    }
  }
}

}  // namespace emt
