#include "engine/eval/bootstrap.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace emt {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum Metric { kAcc, kSen, kSpe, kAuc, kDsc, kIou, kMetricCount };
using MetricValues = std::array<double, kMetricCount>;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, n) by rejection: the standard distributions may differ between standard
// libraries, this does not.
size_t draw_index(std::mt19937_64& rng, size_t n) {
  const uint64_t range = static_cast<uint64_t>(n);
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return static_cast<size_t>(x % range);
}

// Whether every image has the score (true), none has it (false), or it is mixed (throws).
bool all_or_none(std::span<const ImageResult> images, bool (*has)(const ImageResult&),
                 const char* what) {
  const auto count = std::count_if(images.begin(), images.end(), has);
  if (count != 0 && static_cast<size_t>(count) != images.size()) {
    throw std::invalid_argument(std::string("bootstrap_metrics: ") + std::to_string(count) +
                                " of " + std::to_string(images.size()) + " images have a " + what);
  }
  return count != 0;
}

struct Heads {
  bool cls = false, seg = false;
};

// The metrics of the images picked by `pick` (indices into images), NaN where undefined.
MetricValues metrics_of(std::span<const ImageResult> images, std::span<const size_t> pick,
                        const Heads& heads, double threshold) {
  MetricValues v;
  v.fill(kNaN);
  if (heads.cls) {
    std::vector<float> probs;
    std::vector<int> labels;
    probs.reserve(pick.size());
    labels.reserve(pick.size());
    for (const size_t i : pick) {
      probs.push_back(images[i].prob);
      labels.push_back(images[i].label);
    }
    const ClassificationMetrics m = classification_metrics(probs, labels, threshold);
    v[kAcc] = m.acc;
    v[kSen] = m.sen;
    v[kSpe] = m.spe;
    v[kAuc] = m.auc;
  }
  if (heads.seg) {
    double dice = 0, iou = 0;
    for (const size_t i : pick) {
      dice += images[i].mask.dice;
      iou += images[i].mask.iou;
    }
    v[kDsc] = dice / static_cast<double>(pick.size());
    v[kIou] = iou / static_cast<double>(pick.size());
  }
  return v;
}

}  // namespace

double percentile(std::span<const double> sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(std::floor(pos));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(below);
  return sorted[below] + frac * (sorted[above] - sorted[below]);
}

BootstrapResult bootstrap_metrics(std::span<const ImageResult> images,
                                  const BootstrapOptions& options) {
  if (images.empty()) throw std::invalid_argument("bootstrap_metrics: no images");
  if (options.resamples < 1) {
    throw std::invalid_argument("bootstrap_metrics: resamples must be at least 1, got " +
                                std::to_string(options.resamples));
  }
  if (!(options.confidence > 0.0 && options.confidence < 1.0)) {
    throw std::invalid_argument("bootstrap_metrics: confidence " +
                                std::to_string(options.confidence) + " is not in (0, 1)");
  }
  const Heads heads{
      all_or_none(
          images, [](const ImageResult& r) { return !std::isnan(r.prob); }, "probability"),
      all_or_none(
          images, [](const ImageResult& r) { return !std::isnan(r.mask.dice); }, "mask score")};

  std::vector<size_t> all(images.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const MetricValues point = metrics_of(images, all, heads, options.threshold);

  const auto resamples = static_cast<size_t>(options.resamples);
  std::vector<MetricValues> stats(resamples);
  tbb::parallel_for(size_t{0}, resamples, [&](size_t b) {
    std::mt19937_64 rng(splitmix64(options.seed ^ splitmix64(b)));
    std::vector<size_t> pick(images.size());
    for (size_t& i : pick) i = draw_index(rng, images.size());
    stats[b] = metrics_of(images, pick, heads, options.threshold);
  });

  BootstrapResult result;
  result.resamples = options.resamples;
  result.confidence = options.confidence;
  result.seed = options.seed;
  const double tail = (1.0 - options.confidence) / 2.0;
  MetricInterval* out[kMetricCount] = {&result.acc, &result.sen, &result.spe,
                                       &result.auc, &result.dsc, &result.iou};
  const bool computed[kMetricCount] = {heads.cls, heads.cls, heads.cls,
                                       heads.cls, heads.seg, heads.seg};
  for (int m = 0; m < kMetricCount; ++m) {
    MetricInterval& interval = *out[m];
    interval.value = point[static_cast<size_t>(m)];
    std::vector<double> values;
    if (computed[m]) {
      for (const MetricValues& s : stats) {
        if (std::isnan(s[static_cast<size_t>(m)]))
          ++interval.undefined;
        else
          values.push_back(s[static_cast<size_t>(m)]);
      }
    }
    std::sort(values.begin(), values.end());
    interval.defined = static_cast<int>(values.size());
    interval.lo = percentile(values, tail);
    interval.hi = percentile(values, 1.0 - tail);
  }
  return result;
}

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

// The reported metrics in report order, with whether each belongs to the mask head.
struct NamedInterval {
  const char* name;
  const MetricInterval* interval;
  bool seg;
};

std::vector<NamedInterval> reported(const BootstrapResult& ci, bool has_cls, bool has_seg) {
  const NamedInterval all[] = {{"acc", &ci.acc, false}, {"sen", &ci.sen, false},
                               {"spe", &ci.spe, false}, {"auc", &ci.auc, false},
                               {"dsc", &ci.dsc, true},  {"iou", &ci.iou, true}};
  std::vector<NamedInterval> kept;
  for (const NamedInterval& m : all)
    if (m.seg ? has_seg : has_cls) kept.push_back(m);
  return kept;
}

}  // namespace

void add_intervals(nlohmann::json& metrics, const BootstrapResult& ci, bool has_cls, bool has_seg) {
  nlohmann::json intervals = nlohmann::json::object(), undefined = nlohmann::json::object();
  for (const NamedInterval& m : reported(ci, has_cls, has_seg)) {
    intervals[m.name] = {number(m.interval->lo), number(m.interval->hi)};
    undefined[m.name] = m.interval->undefined;
  }
  metrics["ci95"] = intervals;
  metrics["bootstrap"] = {{"method", "percentile"},
                          {"resamples", ci.resamples},
                          {"confidence", ci.confidence},
                          {"seed", ci.seed},
                          {"undefined_resamples", undefined}};
}

std::string intervals_text(const BootstrapResult& ci, bool has_cls, bool has_seg) {
  std::string text;
  for (const NamedInterval& m : reported(ci, has_cls, has_seg)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " %s %.3f [%.3f, %.3f]", m.name, m.interval->value,
                  m.interval->lo, m.interval->hi);
    text += buf;
  }
  return text;
}

}  // namespace emt
