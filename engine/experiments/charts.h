// Figures of the experiment pipelines, drawn with OpenCV alone: metric curves against a swept
// setting (the paper's Fig. 2) and annotated heat maps of a two-setting grid.
#pragma once

#include <opencv2/core.hpp>
#include <span>
#include <string>
#include <vector>

namespace emt {

// One curve: y[i] belongs to the chart's x[i]; a NaN y leaves a gap. err, when not empty, holds
// the half-length of an error bar per point (NaN or 0: none).
struct ChartSeries {
  std::string name;  // legend entry
  std::vector<double> y;
  std::vector<double> err;
};

// A BGR line chart: x ascending, y drawn on [y_min, y_max] with ticks every 0.1 of that range,
// x ticks at round numbers, one colour and marker shape per series, a legend under the axes.
// Throws std::invalid_argument if a series' length differs from x's or x is empty.
cv::Mat line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                   std::span<const double> x, std::span<const ChartSeries> series, double y_min = 0,
                   double y_max = 1, int width = 720, int height = 500);

// One heat map: values[r][c] is the cell of row_values[r] and col_values[c]; NaN is drawn grey
// and printed "n/a".
struct HeatPanel {
  std::string title;
  std::vector<std::vector<double>> values;
};

// The panels side by side under one title, sharing the colour scale [v_min, v_max] (viridis,
// drawn as a bar on the right). Rows grow upwards like a y axis; every cell prints its value
// with two decimals. Throws std::invalid_argument if a panel's shape does not match the values.
cv::Mat heat_maps(const std::string& title, std::span<const HeatPanel> panels,
                  std::span<const double> row_values, const std::string& row_label,
                  std::span<const double> col_values, const std::string& col_label,
                  double v_min = 0, double v_max = 1);

}  // namespace emt
