// A graph with its parameters, compiled on demand for each (batch size, mode) it is run with.
#pragma once

#include <map>
#include <memory>
#include <utility>

#include "engine/dsl/parser.h"
#include "engine/runtime/executor.h"

namespace emt {

class Model {
 public:
  // Parameters are initialised from init_seed; load weights afterwards to replace them.
  Model(const GraphFile& file, uint64_t init_seed, Backend backend = Backend::kReference);

  const Graph& graph() const { return *graph_; }
  Backend backend() const { return backend_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  // Eval executors run the program compiled with CompileOptions::fuse, train executors the
  // graph as written.
  Executor& executor(int64_t batch, Mode mode);

  // On by default. Off compiles eval executors as written: the ground truth that fused outputs
  // are compared with, and a way to rule fusion out when debugging. Changing it drops the
  // cached eval executors, so references to them dangle.
  void set_inference_fusion(bool enabled);
  bool inference_fusion() const { return fuse_inference_; }

  // The precision of eval executors (fused ones: bf16 is for inference only; training stays
  // fp32). Changing it drops the cached eval executors, as set_inference_fusion does; compiling
  // one throws when bf16 cannot run (see CompileOptions::precision).
  void set_inference_precision(Precision precision);
  Precision inference_precision() const { return precision_; }

 private:
  void drop_eval_executors();

  std::shared_ptr<const Graph> graph_;
  Backend backend_;
  bool fuse_inference_ = true;
  Precision precision_ = Precision::kFp32;
  ParamStore params_;
  std::map<std::pair<int64_t, Mode>, std::unique_ptr<Executor>> executors_;
};

}  // namespace emt
