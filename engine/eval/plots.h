// Evaluation figures drawn with OpenCV alone: the ROC curve, and per-image segmentation overlays
// (image | ground truth | prediction) for looking at the best and worst cases by Dice.
#pragma once

#include <filesystem>
#include <opencv2/core.hpp>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "engine/data/preprocess.h"
#include "engine/eval/calibration.h"
#include "engine/io/image_codec.h"

namespace emt {

// A point drawn on the ROC plot, e.g. the chosen threshold: (1 - specificity, sensitivity).
struct PlotMarker {
  double fpr = 0, tpr = 0;
  std::string label;  // "t=0.31"
};

// A size x size BGR image (size >= 200): axes from 0 to 1 with ticks, the chance diagonal, the
// curve (fpr, tpr points in order, as roc_curve gives) and "ROC (AUC 0.912)" as title; the
// marker, when given, as a filled circle with its label. A NaN auc is shown as "n/a".
cv::Mat plot_roc(std::span<const std::pair<double, double>> curve, double auc,
                 const std::optional<PlotMarker>& marker = std::nullopt, int size = 480);

// A size x size BGR reliability diagram (size >= 200): per non-empty bin a bar from its lower to
// its upper probability, as high as its observed positive rate, a dot at (mean probability,
// positive rate), the dashed diagonal of perfect calibration and "reliability (ECE 0.043)" as
// title.
cv::Mat plot_reliability(std::span<const ReliabilityBin> bins, double ece, int size = 480);

// One image for an overlay: grey pixels and two binary masks of the same side.
struct OverlayImage {
  std::string caption;  // "benign (12)  label 0  p 0.13  Dice 0.84"
  cv::Mat image;        // CV_8UC1, side x side
  cv::Mat truth;        // CV_8UC1, 0 or 255
  cv::Mat predicted;    // CV_8UC1, 0 or 255
};

// The network input shown as grey pixels (channel 0, normalisation undone) with the target mask
// and the predicted mask (mask_probs, side x side, >= mask_threshold).
OverlayImage overlay_image(const Sample& sample, std::span<const float> mask_probs,
                           const Normalization& norm, std::string caption,
                           double mask_threshold = 0.5);

// The integer upscale that shows a side-pixel input at least 160 pixels wide (nearest
// neighbour, so pixels stay visible), and the size of overlay_panels' result for it.
int overlay_scale(int side);
cv::Size overlay_size(int side);

// Three panels on one BGR image under a caption line: the image; the image with the ground
// truth filled green; the image with the prediction filled red and the truth's outline green.
cv::Mat overlay_panels(const OverlayImage& overlay);

// Drawing helpers for figures like these, shared with the experiment charts
// (engine/experiments/charts.h).
namespace draw {

inline const cv::Scalar kInk(30, 30, 30), kGrid(225, 225, 225), kPaper(255, 255, 255);

// One number printed with a printf format: number("%.2f", 0.5) is "0.50".
std::string number(const char* format, double v);

enum class Align { kLeft, kCentre, kRight };

// Anti-aliased FONT_HERSHEY_SIMPLEX text, 1 pixel thick; at is the left, middle or right end of
// its baseline.
void put_text(cv::Mat& img, const std::string& text, cv::Point at, Align align, double scale = 0.45,
              const cv::Scalar& colour = kInk);

// The width in pixels of put_text's text.
int text_width(const std::string& text, double scale = 0.45);

// put_text's text read bottom to top, centred on the rows [top, top + length) of a 20-pixel
// wide column on paper whose left edge is x.
void put_vertical_text(cv::Mat& canvas, const std::string& text, int x, int top, int length);

// The data rectangle [x0, x1] x [y0, y1] drawn into the pixel rectangle area, y upwards.
struct Axes {
  cv::Rect area;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;

  cv::Point at(double x, double y) const;
  // A grid line across the area at x = v (y = v), a 5-pixel tick outside the frame and the
  // label under (left of) the tick.
  void x_tick(cv::Mat& canvas, double v, const std::string& label) const;
  void y_tick(cv::Mat& canvas, double v, const std::string& label) const;
  // The frame; the title centred at the top of the canvas; the x label centred under the area,
  // its baseline xlabel_gap pixels below it; the y label read upwards at the canvas's left edge.
  void frame(cv::Mat& canvas, const std::string& title, const std::string& xlabel,
             const std::string& ylabel, int xlabel_gap) const;
};

}  // namespace draw

}  // namespace emt
