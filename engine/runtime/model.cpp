#include "engine/runtime/model.h"

namespace emt {

Model::Model(const GraphFile& file, uint64_t init_seed)
    : graph_(std::make_shared<const Graph>(file.graph)) {
  params_.init(compile(graph_, 1), init_seed);
}

Executor& Model::executor(int64_t batch, Mode mode) {
  auto& slot = executors_[{batch, mode}];
  if (!slot) slot = std::make_unique<Executor>(compile(graph_, batch), params_, mode);
  return *slot;
}

bool Model::has_value(const std::string& name) const {
  for (const GraphInput& t : graph_->targets)
    if (t.name == name) return true;
  for (const GraphOutput& o : graph_->outputs)
    if (o.name == name) return true;
  return false;
}

}  // namespace emt
