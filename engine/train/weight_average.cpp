#include "engine/train/weight_average.h"

#include <algorithm>
#include <stdexcept>

namespace emt {

WeightAverage::WeightAverage(double decay) : decay_(decay) {
  if (!(decay > 0 && decay < 1))
    throw std::invalid_argument("weight average decay must be in (0, 1), got " +
                                std::to_string(decay));
}

double WeightAverage::decay_at(int64_t step) const {
  const auto s = static_cast<double>(step);
  return std::min(decay_, (1 + s) / (10 + s));
}

void WeightAverage::update(const ParamStore& store, int64_t step) {
  const auto d = static_cast<float>(decay_at(step));
  for (const std::string& name : store.names()) {
    const std::vector<float>& value = store.at(name).value;
    std::vector<float>& average = averages_[name];
    if (average.size() != value.size()) {
      average = value;
      continue;
    }
    for (size_t i = 0; i < value.size(); ++i) average[i] = d * average[i] + (1.0f - d) * value[i];
  }
}

void WeightAverage::swap_with(ParamStore& store) {
  for (const std::string& name : store.names()) {
    auto it = averages_.find(name);
    std::vector<float>& value = store.at(name).value;
    if (it == averages_.end() || it->second.size() != value.size())
      throw std::logic_error("weight average: no average of '" + name +
                             "' yet (update after the first optimizer step)");
  }
  // Element by element: executors hold pointers into the store's buffers.
  for (const std::string& name : store.names()) {
    std::vector<float>& value = store.at(name).value;
    std::swap_ranges(value.begin(), value.end(), averages_[name].begin());
  }
  store.mark_updated();
}

AveragedWeightsScope::AveragedWeightsScope(WeightAverage* average, ParamStore& store)
    : average_(average), store_(store) {
  if (average_) average_->swap_with(store_);
}

AveragedWeightsScope::~AveragedWeightsScope() {
  if (average_) average_->swap_with(store_);
}

}  // namespace emt
