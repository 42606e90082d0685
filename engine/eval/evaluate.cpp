#include "engine/eval/evaluate.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "engine/data/batch.h"

namespace emt {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

}  // namespace

EvalReport evaluate(Model& model, std::span<const Sample> samples, std::span<const int> indices,
                    int64_t batch, double threshold) {
  EvalReport report;
  const Graph& g = model.graph();
  for (const GraphOutput& o : g.outputs) {
    report.has_cls = report.has_cls || o.name == kClassOutput;
    report.has_seg = report.has_seg || o.name == kMaskOutput;
  }
  report.loss_terms.assign(g.objective.terms.size(), 0.0);
  int64_t batches = 0;
  for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(batch)) {
    const size_t n = std::min(indices.size() - start, static_cast<size_t>(batch));
    Executor& exec = model.executor(static_cast<int64_t>(n), Mode::kEval);
    std::vector<const Sample*> chunk;
    for (size_t i = 0; i < n; ++i) chunk.push_back(&samples[indices[start + i]]);
    load_batch(exec, chunk);
    exec.forward();
    const ObjectiveValue objective = exec.objective();
    report.loss += objective.total;
    for (size_t t = 0; t < objective.terms.size(); ++t) report.loss_terms[t] += objective.terms[t];
    ++batches;
    for (size_t i = 0; i < n; ++i) {
      ImageResult r{chunk[i]->id, chunk[i]->label, kNaN, {kNaN, kNaN}};
      if (report.has_cls) r.prob = exec.value(exec.program().outputs.at(kClassOutput)).data[i];
      if (report.has_seg) {
        const Tensor seg = exec.value(exec.program().outputs.at(kMaskOutput));
        const int64_t per = seg.numel() / seg.dim(0);
        r.mask = mask_score({seg.data + static_cast<int64_t>(i) * per, static_cast<size_t>(per)},
                            chunk[i]->mask);
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
  if (report.has_cls) report.cls = classification_metrics(probs, labels, threshold);
  if (report.has_seg) report.seg = mean_mask_scores(masks);
  return report;
}

nlohmann::json report_json(const EvalReport& report) {
  nlohmann::json j;
  j["n"] = report.images.size();
  j["loss"] = number(report.loss);
  if (report.has_cls) {
    j["threshold"] = report.cls.threshold;
    j["acc"] = number(report.cls.acc);
    j["sen"] = number(report.cls.sen);
    j["spe"] = number(report.cls.spe);
    j["auc"] = number(report.cls.auc);
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
    out << r.id << "," << r.label << ",";
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
