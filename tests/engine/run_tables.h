// Reading back the tables of runs and jobs in tests: CSV columns by name, classifier metrics
// recomputed from a per_image.csv by naive counting, and snapshots of a run directory to tell an
// untouched training from a redone one.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "engine/io/atomic_file.h"
#include "engine/train/run.h"
#include "tests/engine/text_files.h"

namespace emt::test {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A CSV as header name -> column values (as text).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string at(size_t row, const std::string& column) const {
    for (size_t c = 0; c < header.size(); ++c)
      if (header[c] == column) return rows.at(row).at(c);
    ADD_FAILURE() << "no column " << column;
    return {};
  }
  double number(size_t row, const std::string& column) const {
    const std::string text = at(row, column);
    return text == "nan" ? kNaN : std::stod(text);
  }
};

inline Csv read_csv(const std::filesystem::path& path) {
  Csv csv;
  const std::vector<std::string> lines = split(emt::read_file(path), '\n');
  if (lines.empty()) return csv;
  csv.header = split(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<std::string> cols = split(lines[i], ',');
    if (!lines[i].empty() && lines[i].back() == ',') cols.emplace_back();
    csv.rows.push_back(cols);
  }
  return csv;
}

// Classifier metrics recomputed from a per_image.csv (id,label,prob,predicted,dice,iou).
struct Recomputed {
  size_t n = 0;
  double acc = kNaN, sen = kNaN, spe = kNaN;
  // The probabilities are printed with 6 significant digits, which can turn two close scores
  // into a tie: the true AUC lies between the tie-as-0 and the tie-as-1 counts.
  double auc_low = kNaN, auc_high = kNaN;
  std::vector<std::string> ids;
};

inline Recomputed recompute(const std::filesystem::path& run_dir) {
  const std::vector<std::string> lines = split(emt::read_file(run_dir / emt::kPerImageFile), '\n');
  EXPECT_FALSE(lines.empty());
  EXPECT_EQ(lines.at(0), "id,label,prob,predicted,dice,iou");
  Recomputed r;
  int tp = 0, tn = 0, fp = 0, fn = 0;
  std::vector<double> pos, neg;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<std::string> cols = split(lines[i], ',');
    if (lines[i].back() == ',') cols.emplace_back();
    const size_t k = cols.size();
    EXPECT_GE(k, 6u) << lines[i];
    if (k < 6) continue;
    r.ids.push_back(cols[0]);
    if (cols[k - 4].empty()) continue;  // a graph without a classifier
    const int label = std::stoi(cols[k - 5]);
    const double prob = std::stod(cols[k - 4]);
    const int predicted = std::stoi(cols[k - 3]);
    (label == 1 ? pos : neg).push_back(prob);
    tp += label == 1 && predicted == 1;
    fn += label == 1 && predicted == 0;
    tn += label == 0 && predicted == 0;
    fp += label == 0 && predicted == 1;
  }
  r.n = static_cast<size_t>(tp + tn + fp + fn);
  if (r.n) r.acc = static_cast<double>(tp + tn) / static_cast<double>(r.n);
  if (tp + fn) r.sen = static_cast<double>(tp) / (tp + fn);
  if (tn + fp) r.spe = static_cast<double>(tn) / (tn + fp);
  if (!pos.empty() && !neg.empty()) {
    double greater = 0, ties = 0;
    for (double p : pos) {
      for (double q : neg) {
        greater += p > q;
        ties += p == q;
      }
    }
    const double pairs = static_cast<double>(pos.size() * neg.size());
    r.auc_low = greater / pairs;
    r.auc_high = (greater + ties) / pairs;
  }
  return r;
}

// A CSV field (six decimals or "nan") equals an exact value.
inline void expect_field(double field, double exact, const std::string& what) {
  if (std::isnan(exact)) {
    EXPECT_TRUE(std::isnan(field)) << what << ": " << field << ", want nan";
  } else {
    EXPECT_NEAR(field, exact, 1e-6) << what;
  }
}

inline void expect_auc(double field, const Recomputed& r, const std::string& what) {
  if (std::isnan(r.auc_low)) {
    EXPECT_TRUE(std::isnan(field)) << what;
    return;
  }
  EXPECT_GE(field, r.auc_low - 1e-6) << what;
  EXPECT_LE(field, r.auc_high + 1e-6) << what;
}

inline size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Everything a training's directory holds, to tell an untouched training from a redone one.
inline std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file())
      files[entry.path().filename().string()] = emt::read_file(entry.path());
  return files;
}

}  // namespace emt::test
