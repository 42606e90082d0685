#include "engine/train/optimizer.h"

#include <cmath>
#include <stdexcept>

namespace emt {

namespace {

void check_unit_interval(double value, const char* name) {
  if (!(value >= 0.0 && value < 1.0)) {
    throw std::invalid_argument(std::string("optimizer: ") + name + " must be in [0, 1), got " +
                                std::to_string(value));
  }
}

// Classic (PyTorch) momentum: v = m v + g + wd w; w -= lr v. Weight decay here is L2
// regularisation folded into the gradient, as SGD users expect.
class Sgd final : public Optimizer {
 public:
  explicit Sgd(const OptimizerConfig& config)
      : momentum_(config.momentum), weight_decay_(config.weight_decay) {}

 private:
  void update(const ParamSlot& p, double lr) override {
    const std::span<float> velocity = buffer("sgd.v", p);
    const double decay = p.decay ? weight_decay_ : 0.0;
    for (int64_t i = 0; i < p.size; ++i) {
      const double g = static_cast<double>(p.grad[i]) + decay * p.value[i];
      velocity[i] = static_cast<float>(momentum_ * velocity[i] + g);
      p.value[i] = static_cast<float>(p.value[i] - lr * velocity[i]);
    }
  }

  double momentum_, weight_decay_;
};

// Adam with bias correction. Weight decay is decoupled (AdamW, Loshchilov & Hutter): w shrinks
// by lr * wd * w outside the adaptive step. Folding wd w into g instead would divide the decay
// by sqrt(v), so weights with large gradients would barely be regularised.
class Adam final : public Optimizer {
 public:
  explicit Adam(const OptimizerConfig& config)
      : beta1_(config.beta1),
        beta2_(config.beta2),
        eps_(config.eps),
        weight_decay_(config.weight_decay) {}

 private:
  void update(const ParamSlot& p, double lr) override {
    const std::span<float> m = buffer("adam.m", p);
    const std::span<float> v = buffer("adam.v", p);
    const auto t = static_cast<double>(step_count());
    const double correction1 = 1.0 - std::pow(beta1_, t);
    const double correction2 = 1.0 - std::pow(beta2_, t);
    const double shrink = 1.0 - lr * (p.decay ? weight_decay_ : 0.0);
    for (int64_t i = 0; i < p.size; ++i) {
      const double g = p.grad[i];
      m[i] = static_cast<float>(beta1_ * m[i] + (1.0 - beta1_) * g);
      v[i] = static_cast<float>(beta2_ * v[i] + (1.0 - beta2_) * g * g);
      const double m_hat = m[i] / correction1;
      const double v_hat = v[i] / correction2;
      p.value[i] = static_cast<float>(shrink * p.value[i] - lr * m_hat / (std::sqrt(v_hat) + eps_));
    }
  }

  double beta1_, beta2_, eps_, weight_decay_;
};

}  // namespace

std::unique_ptr<Optimizer> Optimizer::make(const OptimizerConfig& config) {
  if (!(config.weight_decay >= 0.0 && std::isfinite(config.weight_decay))) {
    throw std::invalid_argument("optimizer: weight_decay must be finite and >= 0, got " +
                                std::to_string(config.weight_decay));
  }
  if (config.kind == "sgd") {
    check_unit_interval(config.momentum, "momentum");
    return std::make_unique<Sgd>(config);
  }
  if (config.kind == "adam") {
    check_unit_interval(config.beta1, "beta1");
    check_unit_interval(config.beta2, "beta2");
    if (!(config.eps > 0.0)) {
      throw std::invalid_argument("optimizer: eps must be > 0, got " + std::to_string(config.eps));
    }
    return std::make_unique<Adam>(config);
  }
  throw std::invalid_argument("optimizer: unknown kind '" + config.kind +
                              "' (expected adam or sgd)");
}

void Optimizer::step(std::span<const ParamSlot> params, double lr) {
  if (!(lr >= 0.0 && std::isfinite(lr))) {
    throw std::invalid_argument("optimizer: learning rate must be finite and >= 0, got " +
                                std::to_string(lr));
  }
  // Everything is checked before anything moves, so a rejected step leaves weights, buffers and
  // the step count as they were.
  std::map<std::string, int64_t> sizes;
  for (const ParamSlot& p : params) {
    if (p.size < 0 || (p.size > 0 && (p.value == nullptr || p.grad == nullptr))) {
      throw std::invalid_argument("optimizer: parameter '" + p.name + "' has no data");
    }
    if (!sizes.emplace(p.name, p.size).second) {
      throw std::invalid_argument("optimizer: parameter '" + p.name + "' appears twice");
    }
  }
  for (const auto& [key, values] : state_) {
    const auto it = sizes.find(key.substr(key.find('/') + 1));
    if (it != sizes.end() && static_cast<int64_t>(values.size()) != it->second) {
      throw std::invalid_argument("optimizer: state '" + key + "' has " +
                                  std::to_string(values.size()) + " values but the parameter has " +
                                  std::to_string(it->second));
    }
  }
  ++step_count_;
  for (const ParamSlot& p : params) update(p, lr);
}

std::span<float> Optimizer::buffer(const std::string& prefix, const ParamSlot& p) {
  std::vector<float>& values = state_[prefix + "/" + p.name];
  if (values.empty()) values.assign(static_cast<size_t>(p.size), 0.0f);
  return values;
}

}  // namespace emt
