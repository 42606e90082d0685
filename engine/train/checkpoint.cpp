#include "engine/train/checkpoint.h"

#include <cstdio>
#include <map>
#include <stdexcept>

namespace emt {
namespace {

constexpr const char* kOptimizerPrefix = "optimizer/";
constexpr const char* kAveragePrefix = "average/";

std::string to_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const std::string& meta(const SafetensorsFile& file, const std::string& key,
                        const std::string& path) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end())
    throw std::runtime_error(path + ": not a checkpoint (no '" + key + "' in its metadata)");
  return it->second;
}

// Keys added after the first checkpoints were written: absent means fallback.
std::string optional_meta(const SafetensorsFile& file, const std::string& key,
                          const std::string& fallback) {
  auto it = file.metadata.find(key);
  return it == file.metadata.end() ? fallback : it->second;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const CheckpointOwner& owner,
                     const ParamStore& params, const Optimizer& optimizer,
                     const TrainingState& state, const WeightAverage* average) {
  SafetensorsFile file;
  file.tensors = params.to_tensors();
  const auto add_buffers = [&](const std::string& prefix,
                               const std::map<std::string, std::vector<float>>& buffers) {
    for (const auto& [name, buffer] : buffers)
      file.tensors.push_back({prefix + name, {static_cast<int64_t>(buffer.size())}, buffer});
  };
  add_buffers(kOptimizerPrefix, optimizer.state());
  if (average) add_buffers(kAveragePrefix, average->averages());
  file.metadata = {
      {"graph", owner.graph},
      {"optimizer", owner.optimizer_kind},
      {"images_per_s", to_text(state.images_per_s)},
      {"compute_images_per_s", to_text(state.compute_images_per_s)},
      {"data_wait_fraction", to_text(state.data_wait_fraction)},
      {"optimizer_steps", std::to_string(optimizer.step_count())},
      {"epochs_done", std::to_string(state.epochs_done)},
      {"best_score", to_text(state.best_score)},
      {"best_epoch", std::to_string(state.best_epoch)},
      {"epochs_without_improvement", std::to_string(state.epochs_without_improvement)}};
  write_safetensors(path, file);
}

TrainingState load_checkpoint(const std::filesystem::path& path, const CheckpointOwner& owner,
                              ParamStore& params, Optimizer& optimizer, WeightAverage* average) {
  const SafetensorsFile file = read_safetensors(path);
  const std::string where = path.string();
  if (meta(file, "graph", where) != owner.graph)
    throw std::runtime_error(where + ": checkpoint of graph '" + meta(file, "graph", where) +
                             "', not '" + owner.graph + "'");
  if (meta(file, "optimizer", where) != owner.optimizer_kind)
    throw std::runtime_error(where + ": checkpoint of a '" + meta(file, "optimizer", where) +
                             "' optimizer, train.optimizer is '" + owner.optimizer_kind + "'");
  params.load_tensors(file, where);
  const auto take_buffers = [&](const std::string& prefix,
                                std::map<std::string, std::vector<float>>& buffers) {
    buffers.clear();
    for (const NamedTensor& t : file.tensors)
      if (t.name.rfind(prefix, 0) == 0) buffers[t.name.substr(prefix.size())] = t.data;
  };
  take_buffers(kOptimizerPrefix, optimizer.state());
  if (average) take_buffers(kAveragePrefix, average->averages());
  optimizer.set_step_count(std::stoll(meta(file, "optimizer_steps", where)));
  TrainingState state;
  state.epochs_done = std::stoll(meta(file, "epochs_done", where));
  state.best_score = std::stod(meta(file, "best_score", where));
  state.best_epoch = std::stoll(meta(file, "best_epoch", where));
  state.images_per_s = std::stod(meta(file, "images_per_s", where));
  // An older checkpoint lacks the count; every epoch after the best one did not improve.
  state.epochs_without_improvement =
      std::stoll(optional_meta(file, "epochs_without_improvement",
                               std::to_string(state.epochs_done - 1 - state.best_epoch)));
  state.compute_images_per_s = std::stod(optional_meta(file, "compute_images_per_s", "0"));
  state.data_wait_fraction = std::stod(optional_meta(file, "data_wait_fraction", "0"));
  return state;
}

}  // namespace emt
