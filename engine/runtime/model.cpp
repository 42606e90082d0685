#include "engine/runtime/model.h"

namespace emt {

Model::Model(const GraphFile& file, uint64_t init_seed, Backend backend)
    : graph_(std::make_shared<const Graph>(file.graph)), backend_(backend) {
  params_.init(compile(graph_, 1), init_seed);
}

Executor& Model::executor(int64_t batch, Mode mode) {
  auto& slot = executors_[{batch, mode}];
  if (!slot) {
    const bool eval = mode == Mode::kEval;
    const CompileOptions options{.fuse = eval && fuse_inference_,
                                 .precision = eval ? precision_ : Precision::kFp32};
    slot = std::make_unique<Executor>(compile(graph_, batch, backend_, options), params_, mode);
  }
  return *slot;
}

void Model::set_inference_fusion(bool enabled) {
  if (enabled == fuse_inference_) return;
  fuse_inference_ = enabled;
  drop_eval_executors();
}

void Model::set_inference_precision(Precision precision) {
  if (precision == precision_) return;
  precision_ = precision;
  drop_eval_executors();
}

void Model::drop_eval_executors() {
  std::erase_if(executors_, [](const auto& entry) { return entry.first.second == Mode::kEval; });
}

}  // namespace emt
