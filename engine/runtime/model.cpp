#include "engine/runtime/model.h"

namespace emt {

Model::Model(const GraphFile& file, uint64_t init_seed, Backend backend)
    : graph_(std::make_shared<const Graph>(file.graph)), backend_(backend) {
  params_.init(compile(graph_, 1), init_seed);
}

Executor& Model::executor(int64_t batch, Mode mode) {
  auto& slot = executors_[{batch, mode}];
  if (!slot) slot = std::make_unique<Executor>(compile(graph_, batch, backend_), params_, mode);
  return *slot;
}

}  // namespace emt
