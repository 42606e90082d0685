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
  std::vector<float> grad;  // empty for non-trainable state
};

class ParamStore {
 public:
  // Creates the program's parameters; each draws from its own generator seeded by (seed, name),
  // so initial values do not depend on declaration order or thread count.
  void init(const Program& program, uint64_t seed);

  ParamEntry& at(const std::string& name);
  const ParamEntry& at(const std::string& name) const;
  const std::vector<std::string>& names() const { return order_; }
  void zero_grads();

  // Weights plus batch-norm running statistics, in declaration order.
  std::vector<NamedTensor> to_tensors() const;
  // Every parameter must be present with its exact shape; errors name the tensor and shapes.
  void load_tensors(const SafetensorsFile& file, const std::string& source);

 private:
  std::map<std::string, ParamEntry> entries_;
  std::vector<std::string> order_;
};

}  // namespace emt
