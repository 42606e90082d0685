#include "engine/experiments/charts.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "engine/eval/plots.h"

namespace emt {
namespace {

using draw::Align;
using draw::kInk;
using draw::kPaper;
using draw::put_text;
using draw::put_vertical_text;
using draw::text_width;

const cv::Scalar kMissing(200, 200, 200);

// BGR, the first colours of matplotlib's tab10: blue, orange, green, red, purple, brown.
const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255},  {44, 160, 44},
                               {40, 39, 214},  {189, 103, 148}, {75, 86, 140}};

// The smallest round step (1, 2, 2.5 or 5 times a power of ten) that cuts range into at most
// max_ticks intervals.
double nice_step(double range, int max_ticks) {
  const double raw = range / max_ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

void draw_marker(cv::Mat& img, cv::Point p, size_t kind, const cv::Scalar& colour) {
  switch (kind % 4) {
    case 0:
      cv::circle(img, p, 4, colour, cv::FILLED, cv::LINE_AA);
      break;
    case 1:
      cv::rectangle(img, p - cv::Point(4, 4), p + cv::Point(4, 4), colour, cv::FILLED);
      break;
    case 2: {
      const std::vector<cv::Point> tri = {p + cv::Point(0, -5), p + cv::Point(5, 4),
                                          p + cv::Point(-5, 4)};
      cv::fillConvexPoly(img, tri, colour, cv::LINE_AA);
      break;
    }
    default: {
      const std::vector<cv::Point> diamond = {p + cv::Point(0, -5), p + cv::Point(5, 0),
                                              p + cv::Point(0, 5), p + cv::Point(-5, 0)};
      cv::fillConvexPoly(img, diamond, colour, cv::LINE_AA);
      break;
    }
  }
}

// Viridis colour of t in [0, 1] (clamped).
cv::Scalar viridis(double t) {
  const cv::Mat grey(1, 1, CV_8UC1, cv::Scalar(std::clamp(std::round(t * 255.0), 0.0, 255.0)));
  cv::Mat colour;
  cv::applyColorMap(grey, colour, cv::COLORMAP_VIRIDIS);
  const cv::Vec3b c = colour.at<cv::Vec3b>(0, 0);
  return {static_cast<double>(c[0]), static_cast<double>(c[1]), static_cast<double>(c[2])};
}

}  // namespace

cv::Mat line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                   std::span<const double> x, std::span<const ChartSeries> series, double y_min,
                   double y_max, int width, int height) {
  if (x.empty()) throw std::invalid_argument("line_chart: no x values");
  for (const ChartSeries& s : series) {
    if (s.y.size() != x.size() || (!s.err.empty() && s.err.size() != x.size()))
      throw std::invalid_argument("line_chart: series '" + s.name + "' has " +
                                  std::to_string(s.y.size()) + " values for " +
                                  std::to_string(x.size()) + " x values");
  }
  if (!(y_max > y_min)) throw std::invalid_argument("line_chart: empty y range");
  const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
  double x0 = *lo_it, x1 = *hi_it;
  const double pad = x1 > x0 ? 0.04 * (x1 - x0) : 0.5;
  x0 -= pad;
  x1 += pad;

  cv::Mat canvas(height, width, CV_8UC3, kPaper);
  const int left = 64, right = 24, top = 44, bottom = 100;
  const draw::Axes axes{cv::Rect(left, top, width - left - right, height - top - bottom), x0, x1,
                        y_min, y_max};

  for (int k = 0; k <= 10; ++k) {
    const double v = y_min + (y_max - y_min) * k / 10.0;
    axes.y_tick(canvas, v, draw::number("%.2g", v));
  }
  const double step = nice_step(x1 - x0, 10);
  for (double v = std::ceil(x0 / step) * step; v <= x1 + 1e-9 * step; v += step)
    axes.x_tick(canvas, v, draw::number("%g", std::abs(v) < 1e-12 ? 0.0 : v));
  axes.frame(canvas, title, xlabel, ylabel, 44);

  for (size_t s = 0; s < series.size(); ++s) {
    const cv::Scalar colour = kPalette[s % std::size(kPalette)];
    const ChartSeries& line = series[s];
    for (size_t i = 0; i < x.size(); ++i) {
      if (!std::isfinite(line.y[i])) continue;
      const cv::Point p = axes.at(x[i], line.y[i]);
      if (i + 1 < x.size() && std::isfinite(line.y[i + 1]))
        cv::line(canvas, p, axes.at(x[i + 1], line.y[i + 1]), colour, 2, cv::LINE_AA);
      if (!line.err.empty() && std::isfinite(line.err[i]) && line.err[i] > 0) {
        // Clipped to the axes (a cap marks an end inside them), and nudged sideways per series
        // so the bars of coinciding points stay apart.
        const double lo = line.y[i] - line.err[i], hi = line.y[i] + line.err[i];
        const cv::Point dodge(3 * static_cast<int>(s) - 3 * static_cast<int>(series.size() / 2), 0);
        const cv::Point a = axes.at(x[i], std::max(lo, y_min)) + dodge;
        const cv::Point b = axes.at(x[i], std::min(hi, y_max)) + dodge;
        cv::line(canvas, a, b, colour, 1, cv::LINE_AA);
        if (lo >= y_min)
          cv::line(canvas, a - cv::Point(3, 0), a + cv::Point(3, 0), colour, 1, cv::LINE_AA);
        if (hi <= y_max)
          cv::line(canvas, b - cv::Point(3, 0), b + cv::Point(3, 0), colour, 1, cv::LINE_AA);
      }
      draw_marker(canvas, p, s, colour);
    }
  }

  // The legend, one entry after the other on a line under the x label.
  int legend_width = 0;
  for (const ChartSeries& s : series) legend_width += 40 + text_width(s.name) + 24;
  int lx = std::max(axes.area.x, width / 2 - legend_width / 2);
  const int ly = height - 22;
  for (size_t s = 0; s < series.size(); ++s) {
    const cv::Scalar colour = kPalette[s % std::size(kPalette)];
    cv::line(canvas, {lx, ly - 5}, {lx + 32, ly - 5}, colour, 2, cv::LINE_AA);
    draw_marker(canvas, {lx + 16, ly - 5}, s, colour);
    put_text(canvas, series[s].name, {lx + 40, ly}, Align::kLeft);
    lx += 40 + text_width(series[s].name) + 24;
  }
  return canvas;
}

cv::Mat heat_maps(const std::string& title, std::span<const HeatPanel> panels,
                  std::span<const double> row_values, const std::string& row_label,
                  std::span<const double> col_values, const std::string& col_label, double v_min,
                  double v_max) {
  if (panels.empty() || row_values.empty() || col_values.empty())
    throw std::invalid_argument("heat_maps: nothing to draw");
  if (!(v_max > v_min)) throw std::invalid_argument("heat_maps: empty value range");
  for (const HeatPanel& p : panels) {
    bool ok = p.values.size() == row_values.size();
    for (const std::vector<double>& row : p.values) ok = ok && row.size() == col_values.size();
    if (!ok)
      throw std::invalid_argument("heat_maps: panel '" + p.title + "' is not " +
                                  std::to_string(row_values.size()) + " x " +
                                  std::to_string(col_values.size()));
  }
  const int rows = static_cast<int>(row_values.size());
  const int cols = static_cast<int>(col_values.size());
  const int cell_w = 64, cell_h = 40;
  const int axis_w = 72, gap = 24, bar_w = 18, bar_labels = 48;
  const int top = 72, bottom = 64;
  const int panel_w = axis_w + cols * cell_w;
  const int width =
      std::max(static_cast<int>(panels.size()) * (panel_w + gap) + bar_w + bar_labels + 8,
               text_width(title, 0.6) + 24);
  const int height = top + rows * cell_h + bottom;
  cv::Mat canvas(height, width, CV_8UC3, kPaper);
  put_text(canvas, title, {width / 2, 26}, Align::kCentre, 0.6);

  for (size_t p = 0; p < panels.size(); ++p) {
    const int gx = static_cast<int>(p) * (panel_w + gap) + axis_w;  // the grid's left edge
    put_text(canvas, panels[p].title, {gx + cols * cell_w / 2, top - 14}, Align::kCentre, 0.55);
    for (int r = 0; r < rows; ++r) {
      const int y = top + (rows - 1 - r) * cell_h;  // row 0 at the bottom
      put_text(canvas, draw::number("%g", row_values[static_cast<size_t>(r)]),
               {gx - 8, y + cell_h / 2 + 5}, Align::kRight, 0.4);
      for (int c = 0; c < cols; ++c) {
        const double v = panels[p].values[static_cast<size_t>(r)][static_cast<size_t>(c)];
        const cv::Rect cell(gx + c * cell_w, y, cell_w, cell_h);
        const double t = (v - v_min) / (v_max - v_min);
        cv::rectangle(canvas, cell, std::isfinite(v) ? viridis(t) : kMissing, cv::FILLED);
        cv::rectangle(canvas, cell, kPaper, 1);
        const cv::Scalar ink = std::isfinite(v) && t < 0.55 ? kPaper : kInk;
        put_text(canvas, std::isfinite(v) ? draw::number("%.2f", v) : "n/a",
                 {cell.x + cell_w / 2, cell.y + cell_h / 2 + 5}, Align::kCentre, 0.45, ink);
      }
    }
    for (int c = 0; c < cols; ++c)
      put_text(canvas, draw::number("%g", col_values[static_cast<size_t>(c)]),
               {gx + c * cell_w + cell_w / 2, top + rows * cell_h + 18}, Align::kCentre, 0.4);
    put_text(canvas, col_label, {gx + cols * cell_w / 2, top + rows * cell_h + 44}, Align::kCentre);
    put_vertical_text(canvas, row_label, gx - axis_w + 4, top, rows * cell_h);
  }

  // The shared colour scale.
  const int bx = static_cast<int>(panels.size()) * (panel_w + gap), bh = rows * cell_h;
  for (int i = 0; i < bh; ++i)
    cv::line(canvas, {bx, top + i}, {bx + bar_w - 1, top + i},
             viridis(1.0 - static_cast<double>(i) / std::max(1, bh - 1)), 1);
  cv::rectangle(canvas, cv::Rect(bx, top, bar_w, bh), kInk, 1);
  for (int k = 0; k <= 4; ++k) {
    const int y = top + bh - k * (bh - 1) / 4;
    cv::line(canvas, {bx + bar_w, y}, {bx + bar_w + 4, y}, kInk, 1);
    put_text(canvas, draw::number("%.2g", v_min + (v_max - v_min) * k / 4.0),
             {bx + bar_w + 7, y + 5}, Align::kLeft, 0.4);
  }
  return canvas;
}

}  // namespace emt
