// 95% bootstrap confidence intervals (percentile method) of the paper's metrics over per-image
// results: resample the images with replacement, recompute each metric, and take the 2.5th and
// 97.5th percentiles of the resampled values.
//
// A resample in which a metric is undefined (no malignant case for SEN, no benign case for SPE,
// a single class for AUC) does not count for that metric: it is left out of that metric's
// percentiles and counted in `undefined`, so a small or imbalanced set reports how often that
// happened instead of a biased interval. Classifier metrics are computed only when every image
// has a probability, mask metrics only when every image has a mask score (evaluate() gives NaN
// for a head the graph lacks); otherwise that metric is all NaN.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "engine/eval/evaluate.h"

namespace emt {

struct BootstrapOptions {
  int resamples = 2000;
  double confidence = 0.95;  // in (0, 1)
  uint64_t seed = 42;
  double threshold = 0.5;  // malignant iff prob >= threshold (ACC, SEN, SPE)
};

// value: the metric on the original images; [lo, hi]: the percentile interval (NaN when no
// resample defines the metric); defined + undefined = resamples when the metric is computed.
struct MetricInterval {
  double value = 0, lo = 0, hi = 0;
  int defined = 0, undefined = 0;
};

struct BootstrapResult {
  MetricInterval acc, sen, spe, auc, dsc, iou;
  int resamples = 0;
  double confidence = 0;
  uint64_t seed = 0;
};

// The result is a function of (images, options) only: each resample draws from a generator
// seeded by (seed, resample index), so the thread count does not change it. Throws
// std::invalid_argument for no images, resamples < 1, a confidence outside (0, 1), or a head
// scored for some images but not others.
BootstrapResult bootstrap_metrics(std::span<const ImageResult> images,
                                  const BootstrapOptions& options = {});

// Adds the intervals of the metrics a report has (classifier: acc, sen, spe, auc; mask: dsc,
// iou) to a metrics.json object: "ci95" maps each to [lo, hi] (null where undefined) and
// "bootstrap" records the method, resamples, confidence, seed and undefined resamples per metric.
// `engine eval` and `engine run` write the same fields.
void add_intervals(nlohmann::json& metrics, const BootstrapResult& ci, bool has_cls, bool has_seg);

// " acc 0.866 [0.800, 0.930] sen ..." over the same metrics, for a summary line.
std::string intervals_text(const BootstrapResult& ci, bool has_cls, bool has_seg);

// The percentile (linear interpolation between order statistics, as numpy's default) of
// ascending `sorted` at q in [0, 1]; NaN for an empty span.
double percentile(std::span<const double> sorted, double q);

}  // namespace emt
