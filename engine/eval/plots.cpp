#include "engine/eval/plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <vector>

#include "engine/io/atomic_file.h"
#include "engine/io/image_codec.h"

namespace emt {
namespace {

using draw::Align;
using draw::Axes;
using draw::kPaper;
using draw::put_text;

const cv::Scalar kCurve(180, 90, 20), kMarker(40, 40, 220);  // BGR: blue curve, red marker
const cv::Scalar kBar(235, 200, 160);                        // light blue
const cv::Scalar kTruth(60, 200, 60), kPrediction(50, 50, 230);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

// Text readable on any background: a dark outline under light letters.
void put_label(cv::Mat& img, const std::string& text, cv::Point at) {
  cv::putText(img, text, at, kFont, 0.4, cv::Scalar(0, 0, 0), 3, cv::LINE_AA);
  cv::putText(img, text, at, kFont, 0.4, cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
}

// Frame, grid and ticks every 0.2 on both axes of a unit square, the title above and the axis
// labels; returns the plotting area.
Axes draw_axes(cv::Mat& canvas, const std::string& title, const std::string& xlabel,
               const std::string& ylabel) {
  const int left = 58, right = 22, top = 44, bottom = 54;
  const Axes axes{cv::Rect(left, top, canvas.cols - left - right, canvas.rows - top - bottom)};
  for (int k = 0; k <= 5; ++k) {
    const double v = k / 5.0;
    axes.x_tick(canvas, v, draw::number("%.1f", v));
    axes.y_tick(canvas, v, draw::number("%.1f", v));
  }
  axes.frame(canvas, title, xlabel, ylabel, bottom - 12);
  return axes;
}

cv::Mat upscale(const cv::Mat& m, int scale) {
  cv::Mat out;
  cv::resize(m, out, {}, scale, scale, cv::INTER_NEAREST);
  return out;
}

// grey (BGR) with the mask's pixels blended towards colour.
cv::Mat tint(const cv::Mat& grey, const cv::Mat& mask, const cv::Scalar& colour) {
  cv::Mat blended, out = grey.clone();
  cv::addWeighted(grey, 0.55, cv::Mat(grey.size(), grey.type(), colour), 0.45, 0, blended);
  blended.copyTo(out, mask);
  return out;
}

void outline(cv::Mat& img, const cv::Mat& mask, const cv::Scalar& colour) {
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  cv::drawContours(img, contours, -1, colour, 1, cv::LINE_AA);
}

void dashed_diagonal(cv::Mat& canvas, const Axes& axes) {
  for (int k = 0; k < 40; k += 2)
    cv::line(canvas, axes.at(k / 40.0, k / 40.0), axes.at((k + 1) / 40.0, (k + 1) / 40.0),
             cv::Scalar(150, 150, 150), 1, cv::LINE_AA);
}

constexpr int kCaptionHeight = 22, kGap = 4, kMinPanel = 160;

}  // namespace

cv::Mat plot_roc(std::span<const std::pair<double, double>> curve, double auc,
                 const std::optional<PlotMarker>& marker, int size) {
  if (size < 200) throw std::invalid_argument("plot_roc: size " + std::to_string(size) + " < 200");
  cv::Mat canvas(size, size, CV_8UC3, kPaper);
  const std::string title =
      "ROC (AUC " + (std::isfinite(auc) ? draw::number("%.3f", auc) : std::string("n/a")) + ")";
  const Axes axes = draw_axes(canvas, title, "false positive rate (1 - specificity)",
                              "true positive rate (sensitivity)");
  dashed_diagonal(canvas, axes);  // chance
  std::vector<cv::Point> line;
  for (const auto& [fpr, tpr] : curve)
    if (std::isfinite(fpr) && std::isfinite(tpr)) line.push_back(axes.at(fpr, tpr));
  if (!line.empty()) cv::polylines(canvas, line, false, kCurve, 2, cv::LINE_AA);
  if (marker && std::isfinite(marker->fpr) && std::isfinite(marker->tpr)) {
    const cv::Point p = axes.at(marker->fpr, marker->tpr);
    cv::circle(canvas, p, 6, kMarker, cv::FILLED, cv::LINE_AA);
    // Beside the point, on the side with room: left of it in the right half, above it near
    // the bottom.
    const bool right_half = marker->fpr > 0.6;
    put_text(canvas, marker->label,
             p + cv::Point(right_half ? -10 : 10, marker->tpr < 0.15 ? -12 : 18),
             right_half ? Align::kRight : Align::kLeft, 0.45, kMarker);
  }
  return canvas;
}

cv::Mat plot_reliability(std::span<const ReliabilityBin> bins, double ece, int size) {
  if (size < 200)
    throw std::invalid_argument("plot_reliability: size " + std::to_string(size) + " < 200");
  cv::Mat canvas(size, size, CV_8UC3, kPaper);
  const std::string title =
      "reliability (ECE " + (std::isfinite(ece) ? draw::number("%.3f", ece) : "n/a") + ")";
  const Axes axes = draw_axes(canvas, title, "predicted probability of malignancy",
                              "observed malignant fraction");
  for (const ReliabilityBin& bin : bins) {
    if (bin.count == 0) continue;
    cv::rectangle(canvas, axes.at(bin.lower, 0), axes.at(bin.upper, bin.positive_rate), kBar,
                  cv::FILLED);
    cv::circle(canvas, axes.at(bin.mean_prob, bin.positive_rate), 4, kMarker, cv::FILLED,
               cv::LINE_AA);
  }
  dashed_diagonal(canvas, axes);  // perfect calibration
  return canvas;
}

OverlayImage overlay_image(const Sample& sample, std::span<const float> mask_probs,
                           const Normalization& norm, std::string caption, double mask_threshold) {
  const auto side =
      static_cast<int>(std::lround(std::sqrt(static_cast<double>(sample.mask.size()))));
  const auto pixels = static_cast<size_t>(side) * static_cast<size_t>(side);
  if (side == 0 || pixels != sample.mask.size() || sample.image.size() < pixels ||
      sample.image.size() % pixels != 0 || mask_probs.size() != pixels) {
    throw std::invalid_argument("overlay_image: '" + sample.id + "' has " +
                                std::to_string(sample.image.size()) + " image values, " +
                                std::to_string(sample.mask.size()) + " mask values and " +
                                std::to_string(mask_probs.size()) + " predicted values");
  }
  OverlayImage o;
  o.caption = std::move(caption);
  o.image.create(side, side, CV_8UC1);
  o.truth.create(side, side, CV_8UC1);
  o.predicted.create(side, side, CV_8UC1);
  for (size_t i = 0; i < pixels; ++i) {
    const float grey = (sample.image[i] * norm.std + norm.mean) * 255.0f;
    o.image.data[i] = cv::saturate_cast<uchar>(grey);
    o.truth.data[i] = sample.mask[i] >= 0.5f ? 255 : 0;
    o.predicted.data[i] = mask_probs[i] >= mask_threshold ? 255 : 0;
  }
  return o;
}

int overlay_scale(int side) { return std::max(1, (kMinPanel + side - 1) / side); }

cv::Size overlay_size(int side) {
  const int panel = side * overlay_scale(side);
  return {3 * panel + 2 * kGap, kCaptionHeight + panel};
}

cv::Mat overlay_panels(const OverlayImage& overlay) {
  const int side = overlay.image.rows;
  if (overlay.image.type() != CV_8UC1 || overlay.image.cols != side ||
      overlay.truth.size() != overlay.image.size() ||
      overlay.predicted.size() != overlay.image.size()) {
    throw std::invalid_argument(
        "overlay_panels: image and masks must be square CV_8UC1 of one size");
  }
  const int scale = overlay_scale(side), panel = side * scale;
  cv::Mat grey, truth = upscale(overlay.truth, scale),
                predicted = upscale(overlay.predicted, scale);
  cv::cvtColor(upscale(overlay.image, scale), grey, cv::COLOR_GRAY2BGR);
  cv::Mat with_truth = tint(grey, truth, kTruth);
  outline(with_truth, truth, kTruth);
  cv::Mat with_prediction = tint(grey, predicted, kPrediction);
  outline(with_prediction, predicted, kPrediction);
  outline(with_prediction, truth, kTruth);

  cv::Mat canvas(overlay_size(side), CV_8UC3, cv::Scalar(40, 40, 40));
  put_text(canvas, overlay.caption, {6, 16}, Align::kLeft, 0.45, cv::Scalar(235, 235, 235));
  const cv::Mat* panels[] = {&grey, &with_truth, &with_prediction};
  const char* names[] = {"image", "truth", "prediction"};
  for (int k = 0; k < 3; ++k) {
    cv::Mat dst = canvas(cv::Rect(k * (panel + kGap), kCaptionHeight, panel, panel));
    panels[k]->copyTo(dst);
    put_label(dst, names[k], {4, panel - 6});
  }
  return canvas;
}

namespace draw {

std::string number(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void put_text(cv::Mat& img, const std::string& text, cv::Point at, Align align, double scale,
              const cv::Scalar& colour) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, kFont, scale, 1, &baseline);
  if (align == Align::kCentre) at.x -= size.width / 2;
  if (align == Align::kRight) at.x -= size.width;
  cv::putText(img, text, at, kFont, scale, colour, 1, cv::LINE_AA);
}

int text_width(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline).width;
}

void put_vertical_text(cv::Mat& canvas, const std::string& text, int x, int top, int length) {
  // Drawn horizontally on a strip that is then turned a quarter to the left.
  cv::Mat strip(20, length, canvas.type(), kPaper);
  put_text(strip, text, {strip.cols / 2, 14}, Align::kCentre);
  cv::rotate(strip, strip, cv::ROTATE_90_COUNTERCLOCKWISE);
  strip.copyTo(canvas(cv::Rect(x, top, strip.cols, strip.rows)));
}

cv::Point Axes::at(double x, double y) const {
  return {area.x + cvRound((x - x0) / (x1 - x0) * area.width),
          area.y + area.height - cvRound((y - y0) / (y1 - y0) * area.height)};
}

void Axes::x_tick(cv::Mat& canvas, double v, const std::string& label) const {
  cv::line(canvas, at(v, y0), at(v, y1), kGrid, 1);
  cv::line(canvas, at(v, y0), at(v, y0) + cv::Point(0, 5), kInk, 1);
  put_text(canvas, label, at(v, y0) + cv::Point(0, 20), Align::kCentre, 0.4);
}

void Axes::y_tick(cv::Mat& canvas, double v, const std::string& label) const {
  cv::line(canvas, at(x0, v), at(x1, v), kGrid, 1);
  cv::line(canvas, at(x0, v), at(x0, v) - cv::Point(5, 0), kInk, 1);
  put_text(canvas, label, at(x0, v) + cv::Point(-8, 5), Align::kRight, 0.4);
}

void Axes::frame(cv::Mat& canvas, const std::string& title, const std::string& xlabel,
                 const std::string& ylabel, int xlabel_gap) const {
  cv::rectangle(canvas, area, kInk, 1);
  put_text(canvas, title, {canvas.cols / 2, 28}, Align::kCentre, 0.6);
  put_text(canvas, xlabel, {area.x + area.width / 2, area.y + area.height + xlabel_gap},
           Align::kCentre);
  put_vertical_text(canvas, ylabel, 4, area.y, area.height);
}

}  // namespace draw

}  // namespace emt
