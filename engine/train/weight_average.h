// An exponential moving average of a model's weights and batch-norm statistics over optimizer
// steps (train.ema_decay). On a few hundred training images the weights after any one step move
// validation scores by several points from epoch to epoch; their running average is smoother
// to select an epoch and a threshold on, and usually scores better.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/runtime/params.h"

namespace emt {

class WeightAverage {
 public:
  // Throws std::invalid_argument unless 0 < decay < 1.
  explicit WeightAverage(double decay);

  double decay() const { return decay_; }
  // The decay applied after optimizer step `step` (1 for the first): min(decay, (1 + step) /
  // (10 + step)), so that the average soon forgets the initial weights on a short run.
  double decay_at(int64_t step) const;

  // After optimizer step `step`: average = d * average + (1 - d) * value for every tensor of the
  // store, d = decay_at(step). A tensor without an average yet (the first step, or a checkpoint
  // written without one) starts at its value.
  void update(const ParamStore& store, int64_t step);

  // Exchanges the stored values with the averages and marks the store updated; a second call
  // exchanges them back. Throws std::logic_error when a tensor has no average yet.
  void swap_with(ParamStore& store);

  // The averages by parameter name, for checkpoints.
  std::map<std::string, std::vector<float>>& averages() { return averages_; }
  const std::map<std::string, std::vector<float>>& averages() const { return averages_; }

 private:
  double decay_;
  std::map<std::string, std::vector<float>> averages_;
};

// Holds the averaged weights in the store for its lifetime (nothing when average is null).
class AveragedWeightsScope {
 public:
  AveragedWeightsScope(WeightAverage* average, ParamStore& store);
  ~AveragedWeightsScope();
  AveragedWeightsScope(const AveragedWeightsScope&) = delete;
  AveragedWeightsScope& operator=(const AveragedWeightsScope&) = delete;

 private:
  WeightAverage* average_;
  ParamStore& store_;
};

}  // namespace emt
