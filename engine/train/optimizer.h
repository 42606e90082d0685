// Parameter updates: SGD with momentum and Adam with decoupled weight decay (AdamW). The state
// (named buffers plus the step count) is exposed so checkpoints can resume bit-exactly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace emt {

struct ParamSlot {
  std::string name;  // unique: names the optimizer buffers of this parameter
  float* value = nullptr;
  const float* grad = nullptr;
  int64_t size = 0;
  bool decay = true;  // false for batch-norm gamma/beta and biases
};

struct OptimizerConfig {
  std::string kind = "adam";                      // "adam" | "sgd"
  double momentum = 0.9;                          // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam
  double weight_decay = 0.0;
};

class Optimizer {
 public:
  // Throws std::invalid_argument on an unknown kind or an out-of-range hyperparameter.
  static std::unique_ptr<Optimizer> make(const OptimizerConfig& config);
  virtual ~Optimizer() = default;

  // Updates every slot in place and increments step_count(). Throws std::invalid_argument on a
  // duplicate name, a null pointer, or a slot whose size disagrees with its existing buffers.
  void step(std::span<const ParamSlot> params, double lr);

  // Everything needed to resume bit-exactly: buffers named "<kind>.<buffer>/<param>"
  // ("adam.m/conv1.weight"), created as zeros the first time a parameter is stepped.
  std::map<std::string, std::vector<float>>& state() { return state_; }
  const std::map<std::string, std::vector<float>>& state() const { return state_; }
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t steps) { step_count_ = steps; }

 protected:
  // The buffer "<prefix>/<param>" of p.size zeros, created on first use.
  std::span<float> buffer(const std::string& prefix, const ParamSlot& p);
  // step_count() already counts the step being applied (1 on the first call).
  virtual void update(const ParamSlot& p, double lr) = 0;

 private:
  std::map<std::string, std::vector<float>> state_;
  int64_t step_count_ = 0;
};

}  // namespace emt
