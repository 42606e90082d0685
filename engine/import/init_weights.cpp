#include "engine/import/init_weights.h"

#include <set>
#include <stdexcept>

namespace emt {

std::string InitWeightsReport::summary(const std::string& source) const {
  return "loaded " + std::to_string(loaded.size()) + " of " +
         std::to_string(loaded.size() + kept.size()) + " tensors from " + source + " (" +
         std::to_string(kept.size()) + " kept their initialisation; " +
         std::to_string(unused.size()) + " in the file name no parameter of the graph)";
}

InitWeightsReport load_initial_weights(ParamStore& params, const SafetensorsFile& file,
                                       const std::string& source) {
  InitWeightsReport report;
  // Checked in full before anything is written, so a bad file leaves the store as it was.
  for (const std::string& name : params.names()) {
    const NamedTensor* t = file.find(name);
    if (!t) {
      report.kept.push_back(name);
      continue;
    }
    const Shape& want = params.at(name).spec.shape;
    if (t->shape != want)
      throw std::runtime_error(source + ": tensor '" + name + "' has shape " + shape_str(t->shape) +
                               ", the graph needs " + shape_str(want));
    report.loaded.push_back(name);
  }
  const std::set<std::string> known(params.names().begin(), params.names().end());
  for (const NamedTensor& t : file.tensors)
    if (!known.count(t.name)) report.unused.push_back(t.name);
  if (report.loaded.empty())
    throw std::runtime_error(source + ": none of its " + std::to_string(file.tensors.size()) +
                             " tensors names a parameter of the graph");
  for (const std::string& name : report.loaded) params.at(name).value = file.find(name)->data;
  params.mark_updated();
  return report;
}

InitWeightsReport load_initial_weights(ParamStore& params, const std::filesystem::path& path) {
  return load_initial_weights(params, read_safetensors(path), path.string());
}

}  // namespace emt
