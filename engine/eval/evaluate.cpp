#include "engine/eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "engine/eval/calibration.h"
#include "engine/eval/mask_regions.h"
#include "engine/io/csv.h"
#include "engine/runtime/batch.h"

namespace emt {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

// The mirror acts on the last axis, which is W only for [N, C, H, W].
void check_nchw(const Tensor& t, const char* what) {
  if (t.rank() != 4)
    throw std::runtime_error(std::string("eval.flip_tta: the ") + what + " is " +
                             shape_str(t.shape) + ", not [N, C, H, W]");
}

}  // namespace

PredictOptions predict_options(const Config& config) {
  return {config.get_bool("eval.flip_tta"), config.get_bool("eval.largest_region")};
}

void predict_batch(Executor& exec, std::span<const Sample* const> samples, PredictOptions options,
                   std::vector<float>& cls, std::vector<float>& seg) {
  const bool flip_tta = options.flip_tta;
  const auto& outputs = exec.program().outputs;
  const auto cls_output = outputs.find(kClassOutput);
  const auto seg_output = outputs.find(kMaskOutput);
  cls.clear();
  seg.clear();
  // The mirrored pass runs first so that the executor ends on the images as given.
  if (flip_tta) {
    load_batch(exec, samples);
    const Tensor image = exec.value(kImageInput);
    check_nchw(image, "image input");
    const int64_t width = image.shape.back();
    for (float* row = image.data; row < image.data + image.numel(); row += width)
      std::reverse(row, row + width);
    exec.forward();
    if (cls_output != outputs.end()) {
      const Tensor c = exec.value(cls_output->second);
      cls.assign(c.data, c.data + c.numel());
    }
    if (seg_output != outputs.end()) {
      const Tensor s = exec.value(seg_output->second);
      check_nchw(s, "mask output");
      seg.resize(static_cast<size_t>(s.numel()));
      const int64_t w = s.shape.back();
      for (int64_t row = 0; row < s.numel(); row += w)
        std::reverse_copy(s.data + row, s.data + row + w, seg.data() + row);
    }
  }
  load_batch(exec, samples);
  exec.forward();
  // Without flip_tta the buffers take the outputs unchanged, so the results are the plain
  // pass's bit for bit.
  const auto take = [&](const Tensor& t, std::vector<float>& dst) {
    if (!flip_tta) {
      dst.assign(t.data, t.data + t.numel());
      return;
    }
    for (size_t k = 0; k < dst.size(); ++k) dst[k] = 0.5f * (t.data[k] + dst[k]);
  };
  if (cls_output != outputs.end()) take(exec.value(cls_output->second), cls);
  if (seg_output == outputs.end()) return;
  const Tensor mask = exec.value(seg_output->second);
  take(mask, seg);
  if (!options.largest_region) return;
  if (mask.rank() != 4 || mask.shape[1] != 1)
    throw std::runtime_error("eval.largest_region: the mask output is " + shape_str(mask.shape) +
                             ", not [N, 1, H, W]");
  const int64_t height = mask.shape[2], width = mask.shape[3];
  for (size_t start = 0; start < seg.size(); start += static_cast<size_t>(height * width))
    keep_largest_region({seg.data() + start, static_cast<size_t>(height * width)}, height, width);
}

EvalReport evaluate(Model& model, std::span<const Sample> samples, std::span<const int> indices,
                    int64_t batch, double threshold, PredictOptions options) {
  EvalReport report;
  report.predict = options;
  const Graph& g = model.graph();
  for (const GraphOutput& o : g.outputs) {
    report.has_cls = report.has_cls || o.name == kClassOutput;
    report.has_seg = report.has_seg || o.name == kMaskOutput;
  }
  report.loss_terms.assign(g.objective.terms.size(), 0.0);
  int64_t batches = 0;
  std::vector<float> cls, seg;
  for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(batch)) {
    const size_t n = std::min(indices.size() - start, static_cast<size_t>(batch));
    Executor& exec = model.executor(static_cast<int64_t>(n), Mode::kEval);
    std::vector<const Sample*> chunk;
    for (size_t i = 0; i < n; ++i) chunk.push_back(&samples[indices[start + i]]);
    predict_batch(exec, chunk, options, cls, seg);
    const ObjectiveValue objective = exec.objective();
    report.loss += objective.total;
    for (size_t t = 0; t < objective.terms.size(); ++t) report.loss_terms[t] += objective.terms[t];
    ++batches;
    for (size_t i = 0; i < n; ++i) {
      ImageResult r{chunk[i]->id, chunk[i]->label, kNaN, {kNaN, kNaN}};
      if (report.has_cls) r.prob = cls[i * (cls.size() / n)];
      if (report.has_seg) {
        const size_t per = seg.size() / n;
        r.mask = mask_score({seg.data() + i * per, per}, chunk[i]->mask);
      }
      report.images.push_back(r);
    }
  }
  if (batches) {
    report.loss /= static_cast<double>(batches);
    for (double& t : report.loss_terms) t /= static_cast<double>(batches);
  }
  std::vector<float> probs;
  std::vector<int> labels;
  std::vector<MaskScore> masks;
  for (const ImageResult& r : report.images) {
    probs.push_back(r.prob);
    labels.push_back(r.label);
    masks.push_back(r.mask);
  }
  if (report.has_cls) {
    report.cls = classification_metrics(probs, labels, threshold);
    report.ece = expected_calibration_error(probs, labels);
    report.brier = brier_score(probs, labels);
  }
  if (report.has_seg) report.seg = mean_mask_scores(masks);
  return report;
}

nlohmann::json report_json(const EvalReport& report) {
  nlohmann::json j;
  j["n"] = report.images.size();
  j["loss"] = number(report.loss);
  j["flip_tta"] = report.predict.flip_tta;
  j["largest_region"] = report.predict.largest_region;
  if (report.has_cls) {
    j["threshold"] = report.cls.threshold;
    j["acc"] = number(report.cls.acc);
    j["sen"] = number(report.cls.sen);
    j["spe"] = number(report.cls.spe);
    j["auc"] = number(report.cls.auc);
    j["ece"] = number(report.ece);
    j["brier"] = number(report.brier);
    j["confusion"] = {
        {"tp", report.cls.tp}, {"tn", report.cls.tn}, {"fp", report.cls.fp}, {"fn", report.cls.fn}};
  }
  if (report.has_seg) {
    j["dsc"] = number(report.seg.dsc);
    j["iou"] = number(report.seg.iou);
  }
  return j;
}

std::string report_csv(const EvalReport& report) {
  std::ostringstream out;
  out << "id,label,prob,predicted,dice,iou\n";
  for (const ImageResult& r : report.images) {
    out << csv_field(r.id) << "," << r.label << ",";
    if (report.has_cls)
      out << r.prob << "," << (r.prob >= report.cls.threshold ? 1 : 0);
    else
      out << ",";
    out << ",";
    if (report.has_seg)
      out << r.mask.dice << "," << r.mask.iou;
    else
      out << ",";
    out << "\n";
  }
  return out.str();
}

}  // namespace emt
