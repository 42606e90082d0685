// Hand-built mobile models for the runtime tests: values, steps and random weights appended to
// an Artifact with the bookkeeping (indices, weight slices, weight counts) done once here.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mobile/artifact.h"

namespace emt::mobile::test {

class ModelBuilder {
 public:
  // Weights are drawn from U(-scale, scale) with the seed.
  ModelBuilder(std::string graph, uint32_t seed, float scale = 0.5f)
      : rng_(seed), weight_(-scale, scale) {
    a_.graph = std::move(graph);
  }

  // A value of per-image shape [c, h, w]; its index.
  uint32_t value(const char* name, uint32_t c, uint32_t h, uint32_t w) {
    a_.values.push_back({name, c, h, w});
    return static_cast<uint32_t>(a_.values.size() - 1);
  }

  WeightRef weights(uint64_t count) {
    const WeightRef ref{a_.weights.size(), count};
    for (uint64_t i = 0; i < count; ++i) a_.weights.push_back(weight_(rng_));
    return ref;
  }

  // A convolution (or transposed one) with its weight, and a bias when asked.
  void conv(StepKind kind, const char* name, uint32_t in, uint32_t out, const ConvDesc& c,
            bool bias) {
    StepDesc s{kind, name, {in},
               out,  c,    weights(uint64_t{c.cout} * (c.cin / c.groups) * c.kernel * c.kernel),
               {}};
    if (bias) s.bias = weights(kind == StepKind::kConvTranspose2d ? c.cin : c.cout);
    a_.steps.push_back(std::move(s));
  }

  void dense(const char* name, uint32_t in, uint32_t out) {
    const uint64_t inputs = a_.values[in].channels, outputs = a_.values[out].channels;
    const WeightRef weight = weights(inputs * outputs);
    a_.steps.push_back({StepKind::kDense, name, {in}, out, {}, weight, weights(outputs)});
  }

  // A step without weights (add, pooling, activations).
  void step(StepKind kind, const char* name, std::vector<uint32_t> in, uint32_t out) {
    a_.steps.push_back({kind, name, std::move(in), out, {}, {}, {}});
  }

  Artifact& artifact() { return a_; }

 private:
  Artifact a_;
  std::mt19937 rng_;
  std::uniform_real_distribution<float> weight_;
};

}  // namespace emt::mobile::test
