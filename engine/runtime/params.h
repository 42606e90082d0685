// Parameter and batch-norm state storage shared by every compiled program of one model, keyed by
// the graph's parameter names so weight files stay readable ("backbone.ds1.dw.weight").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/io/safetensors.h"

namespace emt {

struct ParamEntry {
  ParamSpec spec;
  std::vector<float> value;
  std::vector<float> grad;  // empty for non-trainable state and until ensure_grads()
};

// Tensors computed from stored values (a batch norm folded into a convolution's weight and
// bias), valid while the store's version equals `version`.
struct DerivedParams {
  std::vector<float> weight, bias;
  uint64_t version = 0;
  bool valid = false;
};

class ParamStore {
 public:
  // Creates the program's parameters; each draws from its own generator seeded by (seed, name),
  // so initial values do not depend on declaration order or thread count.
  void init(const Program& program, uint64_t seed);

  ParamEntry& at(const std::string& name);
  const ParamEntry& at(const std::string& name) const;
  const std::vector<std::string>& names() const { return order_; }
  // Gradient buffers exist only once something trains (a train-mode executor asks for them):
  // an inference-only model does not carry a second copy of its weights.
  void ensure_grads();
  void zero_grads();

  // Weights plus batch-norm running statistics, in declaration order.
  std::vector<NamedTensor> to_tensors() const;
  // Every parameter must be present with its exact shape and finite values; errors name the
  // tensor and shapes (or the first non-finite element).
  void load_tensors(const SafetensorsFile& file, const std::string& source);

  // Values are written in place by code the store never sees (optimizers, batch norm's running
  // statistics), so whoever writes them says so here. Executors that derive params from the
  // store (inference fusion's folded batch norms) recompute them when the version has moved.
  // init, load_tensors and train-mode forwards mark it themselves; an optimizer step must.
  void mark_updated() { ++version_; }
  uint64_t version() const { return version_; }

  // One buffer pair per key, shared by every executor of the store, so that each batch size's
  // program neither holds its own copy nor recomputes it. Created on first use with the given
  // sizes (which later calls must repeat); the buffers never move.
  DerivedParams& derived(const std::string& key, size_t weight_size, size_t bias_size);

 private:
  std::map<std::string, ParamEntry> entries_;
  std::vector<std::string> order_;
  uint64_t version_ = 0;
  std::map<std::string, DerivedParams> derived_;
};

}  // namespace emt
