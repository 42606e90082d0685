#include "engine/runtime/params.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace emt {
namespace {

uint64_t hash_name(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the name, keyed by the seed
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

void initialize(ParamEntry& e, uint64_t seed, const std::string& name) {
  const size_t n = static_cast<size_t>(shape_numel(e.spec.shape));
  e.value.assign(n, 0.0f);
  switch (e.spec.init) {
    case ParamInit::kZeros:
      break;
    case ParamInit::kOnes:
      std::fill(e.value.begin(), e.value.end(), 1.0f);
      break;
    case ParamInit::kHeNormal: {
      std::mt19937_64 rng(hash_name(seed, name));
      std::normal_distribution<float> dist(
          0.0f, std::sqrt(2.0f / static_cast<float>(std::max<int64_t>(1, e.spec.fan_in))));
      for (float& v : e.value) v = dist(rng);
      break;
    }
  }
}

}  // namespace

void ParamStore::init(const Program& program, uint64_t seed) {
  for (const ParamInfo& p : program.params) {
    if (entries_.count(p.name)) continue;
    ParamEntry& e = entries_[p.name];
    e.spec = p.spec;
    initialize(e, seed, p.name);
    order_.push_back(p.name);
  }
  mark_updated();
}

ParamEntry& ParamStore::at(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw std::out_of_range("no parameter named '" + name + "'");
  return it->second;
}

const ParamEntry& ParamStore::at(const std::string& name) const {
  return const_cast<ParamStore*>(this)->at(name);
}

DerivedParams& ParamStore::derived(const std::string& key, size_t weight_size, size_t bias_size) {
  auto [it, created] = derived_.try_emplace(key);
  DerivedParams& d = it->second;
  if (created) {
    d.weight.assign(weight_size, 0.0f);
    d.bias.assign(bias_size, 0.0f);
  } else if (d.weight.size() != weight_size || d.bias.size() != bias_size) {
    throw std::logic_error("derived params '" + key + "' requested with different sizes");
  }
  return d;
}

void ParamStore::ensure_grads() {
  for (auto& [name, e] : entries_)
    if (e.spec.trainable && e.grad.empty()) e.grad.assign(e.value.size(), 0.0f);
}

void ParamStore::zero_grads() {
  for (auto& [name, e] : entries_) std::fill(e.grad.begin(), e.grad.end(), 0.0f);
}

std::vector<NamedTensor> ParamStore::to_tensors() const {
  std::vector<NamedTensor> tensors;
  for (const std::string& name : order_) {
    const ParamEntry& e = entries_.at(name);
    tensors.push_back({name, e.spec.shape, e.value});
  }
  return tensors;
}

void ParamStore::load_tensors(const SafetensorsFile& file, const std::string& source) {
  mark_updated();  // first: a load that fails half-way has still replaced values
  for (const std::string& name : order_) {
    ParamEntry& e = entries_.at(name);
    const NamedTensor* t = file.find(name);
    if (!t) throw std::runtime_error(source + ": missing tensor '" + name + "'");
    if (t->shape != e.spec.shape)
      throw std::runtime_error(source + ": tensor '" + name + "' has shape " + shape_str(t->shape) +
                               ", the graph needs " + shape_str(e.spec.shape));
    // A NaN weight need not show in the outputs (a relu can turn it into 0): predictions from
    // it would be quietly wrong.
    const auto bad =
        std::find_if(t->data.begin(), t->data.end(), [](float v) { return !std::isfinite(v); });
    if (bad != t->data.end())
      throw std::runtime_error(
          source + ": tensor '" + name + "' element " + std::to_string(bad - t->data.begin()) +
          " is " + (std::isnan(*bad) ? "NaN" : "infinite") + "; weights must be finite");
    e.value = t->data;
  }
}

}  // namespace emt
