#include "engine/data/dataset.h"

#include <tbb/parallel_for.h>

#include "engine/data/phantom.h"

namespace emt {

Dataset load_dataset(const Config& config, int channels) {
  const std::string& source = config.get_string("data.source");
  if (source != "phantom")
    throw GraphError(config.where("data.source"),
                     "data.source = \"" + source +
                         "\": only the synthetic \"phantom\" source is supported in this version");
  PhantomConfig phantom;
  phantom.count = static_cast<int>(config.get_int("data.count"));
  phantom.seed = static_cast<uint64_t>(config.get_int("data.seed"));
  phantom.min_side = static_cast<int>(config.get_int("data.phantom_min_side"));
  phantom.max_side = static_cast<int>(config.get_int("data.phantom_max_side"));
  const int size = static_cast<int>(config.get_int("data.input_size"));
  const Normalization norm{static_cast<float>(config.get_float("data.norm_mean")),
                           static_cast<float>(config.get_float("data.norm_std"))};

  Dataset data;
  data.samples.resize(static_cast<size_t>(phantom.count));
  tbb::parallel_for(0, phantom.count, [&](int i) {
    data.samples[static_cast<size_t>(i)] =
        preprocess(generate_phantom(phantom, i), size, channels, norm);
  });
  std::vector<int> labels;
  int malignant = 0;
  for (const Sample& s : data.samples) {
    labels.push_back(s.label);
    malignant += s.label;
  }
  data.split = stratified_split(labels, config.get_float("data.train_fraction"),
                                config.get_float("data.val_fraction"), phantom.seed);
  data.description = "phantom: " + std::to_string(phantom.count) + " images (" +
                     std::to_string(malignant) + " malignant), seed " +
                     std::to_string(phantom.seed) + ", " + std::to_string(size) + "x" +
                     std::to_string(size);
  return data;
}

}  // namespace emt
