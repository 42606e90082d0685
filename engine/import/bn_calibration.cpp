#include "engine/import/bn_calibration.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include "engine/runtime/batch.h"
#include "ops/batch_norm/batch_norm.h"
#include "ops/core/parallel.h"

namespace emt {
namespace {

// Per-channel count, mean and sum of squared deviations of an [N,C,H,W] or [N,C] value over
// every batch seen. Batches are merged with Chan et al.'s pairwise update, which, unlike
// sum(x^2) - n mean^2, does not cancel when |mean| >> std.
struct ChannelMoments {
  int64_t count = 0;
  std::vector<double> mean, m2;

  void add(const Tensor& x) {
    const int64_t batch = x.dim(0), channels = x.dim(1);
    const int64_t spatial = x.rank() == 4 ? x.dim(2) * x.dim(3) : 1;
    const int64_t n = batch * spatial;
    if (mean.empty()) {
      mean.assign(static_cast<size_t>(channels), 0.0);
      m2.assign(static_cast<size_t>(channels), 0.0);
    }
    parallel_for(channels, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        double sum = 0;
        for (int64_t b = 0; b < batch; ++b) {
          const float* row = x.data + (b * channels + c) * spatial;
          for (int64_t s = 0; s < spatial; ++s) sum += row[s];
        }
        const double batch_mean = sum / static_cast<double>(n);
        double sq = 0;
        for (int64_t b = 0; b < batch; ++b) {
          const float* row = x.data + (b * channels + c) * spatial;
          for (int64_t s = 0; s < spatial; ++s) sq += (row[s] - batch_mean) * (row[s] - batch_mean);
        }
        const size_t k = static_cast<size_t>(c);
        const double delta = batch_mean - mean[k];
        const double total = static_cast<double>(count + n);
        mean[k] += delta * static_cast<double>(n) / total;
        m2[k] += sq + delta * delta * static_cast<double>(count) * static_cast<double>(n) / total;
      }
    });
    count += n;
  }
};

struct Target {
  std::string node;
  double eps = 0;
  SourceLoc loc;
  std::string input;                   // the value the batch norm normalises
  std::string gamma, beta, mean, var;  // its tensors' names in the store
  ChannelMoments moments;
};

std::string pin_name(const Target& t) { return "bn_calibration/" + t.node; }

std::vector<Target> select_targets(const Program& program, std::span<const std::string> loaded) {
  const std::set<std::string> from_file(loaded.begin(), loaded.end());
  std::vector<Target> targets;
  for (const Step& step : program.steps) {
    if (step.node->id != OpId::batch_norm) continue;
    auto param = [&](BatchNormOp::Param p) { return program.params[step.params[p]].name; };
    Target t{step.node->name,
             step.node->attrs.get_float("eps"),
             step.node->loc,
             program.values[step.inputs[0]].name,
             param(BatchNormOp::kGamma),
             param(BatchNormOp::kBeta),
             param(BatchNormOp::kRunningMean),
             param(BatchNormOp::kRunningVar),
             {}};
    if (from_file.count(t.gamma) || from_file.count(t.beta) || from_file.count(t.mean) ||
        from_file.count(t.var))
      targets.push_back(std::move(t));
  }
  return targets;
}

// Rewrites one batch norm's tensors from its measured input moments; see the header.
void recalibrate(ParamStore& params, const Target& t) {
  std::vector<float>& gamma = params.at(t.gamma).value;
  std::vector<float>& beta = params.at(t.beta).value;
  std::vector<float>& mean = params.at(t.mean).value;
  std::vector<float>& var = params.at(t.var).value;
  const double count = static_cast<double>(t.moments.count);
  for (size_t c = 0; c < gamma.size(); ++c) {
    const double m = t.moments.mean[c];
    const double v = t.moments.m2[c] / count;
    const double old_scale = gamma[c] / std::sqrt(double(var[c]) + t.eps);
    beta[c] = static_cast<float>(beta[c] + old_scale * (m - mean[c]));
    gamma[c] = static_cast<float>(old_scale * std::sqrt(v + t.eps));
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(v);
  }
}

}  // namespace

std::string BnCalibrationReport::summary() const {
  return "calibrated " + std::to_string(calibrated.size()) + " imported batch norms over " +
         std::to_string(images) + " images";
}

std::vector<const Sample*> bn_calibration_samples(const Dataset& data, int64_t count) {
  const std::vector<int>& train = data.split.train;
  const size_t n = std::min(train.size(), static_cast<size_t>(std::max<int64_t>(count, 0)));
  std::vector<const Sample*> picked;
  for (size_t i = 0; i < n; ++i)
    picked.push_back(&data.samples[static_cast<size_t>(train[i * train.size() / n])]);
  return picked;
}

BnCalibrationReport calibrate_batch_norms(Model& model, std::span<const Sample* const> images,
                                          std::span<const std::string> loaded_params,
                                          int64_t batch) {
  if (batch < 1)
    throw std::invalid_argument("batch-norm calibration: batch must be positive, got " +
                                std::to_string(batch));
  // Unfused, so that every batch norm and its input exist as values.
  std::vector<Target> targets = select_targets(
      compile(std::make_shared<const Graph>(model.graph()), 1, model.backend()), loaded_params);
  BnCalibrationReport report;
  if (targets.empty()) return report;
  if (images.empty())
    throw std::invalid_argument("batch-norm calibration: " + std::to_string(targets.size()) +
                                " imported batch norms to calibrate, but no image");

  // The inputs become graph outputs, which the memory plan keeps to the end of the forward pass
  // and the compiler keeps in the plain layout the moments are read in.
  auto pinned = std::make_shared<Graph>(model.graph());
  for (const Target& t : targets) pinned->outputs.push_back({pin_name(t), t.input, t.loc});
  const std::shared_ptr<const Graph> graph = std::move(pinned);

  const int64_t image_count = static_cast<int64_t>(images.size());
  std::map<int64_t, std::unique_ptr<Executor>> executors;  // by batch size: the last may be short
  for (int64_t start = 0; start < image_count; start += batch) {
    const int64_t n = std::min(batch, image_count - start);
    std::unique_ptr<Executor>& exec = executors[n];
    if (!exec)
      exec = std::make_unique<Executor>(compile(graph, n, model.backend()), model.params(),
                                        Mode::kEval);
    load_batch(*exec, images.subspan(static_cast<size_t>(start), static_cast<size_t>(n)));
    exec->forward();
    for (Target& t : targets) t.moments.add(exec->value(exec->program().outputs.at(pin_name(t))));
  }

  for (const Target& t : targets) {
    recalibrate(model.params(), t);
    report.calibrated.push_back(t.node);
  }
  report.images = image_count;
  model.params().mark_updated();
  return report;
}

}  // namespace emt
