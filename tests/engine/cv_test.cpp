// `engine experiment cv` on the tiny two-headed graph and 64 phantoms, 2 folds x 2 seeds: the
// runs cover the folds and seeds, each fold's test part is scored at a threshold its own
// validation part chose, the summary equals a naive recomputation from cv_runs.csv and the
// per-image files, and a job run again redoes only what did not finish.
#include "engine/experiments/cv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/dsl/parser.h"
#include "engine/experiments/per_image_table.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"
#include "tests/engine/run_tables.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::test::Csv;
using emt::test::kNaN;
using emt::test::read_csv;
using emt::test::recompute;
using emt::test::Recomputed;

constexpr int kImages = 64;

std::vector<std::string> settings() {
  std::vector<std::string> s = emt::test::kSmallData;
  s.push_back("data.count=" + std::to_string(kImages));
  s.push_back("train.epochs=1");
  return s;
}

// A value of a run's config.toml: "key = value  # from ..." in its [section].
std::string setting(const fs::path& run, const std::string& section, const std::string& key) {
  const std::string config = emt::read_file(run / emt::kConfigFile);
  const size_t start = config.find("[" + section + "]\n");
  const size_t at = config.find("\n" + key + " = ", start);
  if (start == std::string::npos || at == std::string::npos) {
    ADD_FAILURE() << section << "." << key << " missing from " << run / emt::kConfigFile;
    return {};
  }
  const size_t value = at + key.size() + 4;
  return config.substr(value, config.find(' ', value) - value);
}

nlohmann::json read_json(const fs::path& path) {
  return nlohmann::json::parse(emt::read_file(path));
}

// The sample ids of a split part, sorted.
std::vector<std::string> ids_of(const emt::Dataset& data, const std::vector<int>& part) {
  std::vector<std::string> ids;
  for (int i : part) ids.push_back(data.samples[static_cast<size_t>(i)].id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Naive t_{0.975, n-1} for the run counts of these tests (two-sided 95% Student t table).
double t975(int n) {
  const std::map<int, double> table = {{2, 12.706205}, {3, 4.302653}, {4, 3.182446}};
  return table.at(n);
}

class CvJob : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
  emt::CvSpec spec(int seeds) {
    return {.graph = write("tiny.toml", emt::test::kTinyGraph),
            .overrides = settings(),
            .job_dir = dir_ / "job",
            .folds = 2,
            .seeds = seeds,
            .target_sensitivity = 0.9};
  }
};

TEST_F(CvJob, RunsEveryFoldAndSeedAndItsTablesAgreeWithTheRuns) {
  const emt::CvSpec cv = spec(2);
  std::ostringstream console;
  const emt::CvReport report = emt::cross_validation(cv, {.console = &console});
  EXPECT_NE(console.str().find("[4/4] seed 2 fold 2/2"), std::string::npos) << console.str();

  const Csv runs = read_csv(cv.job_dir / emt::kCvRunsCsv);
  ASSERT_EQ(runs.header, (std::vector<std::string>{"seed", "fold", "dir", "threshold", "acc", "sen",
                                                   "spe", "auc", "dsc", "iou"}));
  ASSERT_EQ(runs.rows.size(), 4u);
  ASSERT_EQ(report.runs.size(), 4u);
  std::set<std::pair<std::string, std::string>> seen;
  std::map<std::string, std::vector<std::string>> fold_test_ids;  // by fold
  std::map<std::string, int> held_out;                            // image id -> folds
  std::map<std::string, std::vector<float>> pooled_probs;         // by seed
  std::map<std::string, std::vector<int>> pooled_labels;
  for (size_t i = 0; i < runs.rows.size(); ++i) {
    const std::string seed = runs.at(i, "seed"), fold = runs.at(i, "fold");
    EXPECT_EQ(seed, i < 2 ? "1" : "2");
    EXPECT_EQ(fold, std::to_string(i % 2 + 1));
    EXPECT_TRUE(seen.insert({seed, fold}).second) << "seed " << seed << " fold " << fold;
    const fs::path run = cv.job_dir / runs.at(i, "dir");
    EXPECT_EQ(run, report.runs[i].dir);
    EXPECT_EQ(setting(run, "train", "seed"), seed);
    EXPECT_EQ(setting(run, "data", "folds"), "4");
    EXPECT_EQ(setting(run, "data", "fold"), std::to_string(2 * (i % 2)));
    EXPECT_EQ(setting(run, "eval", "target_sensitivity"), "0.9");

    // The threshold is the one stored with the weights, and the test figures are the per-image
    // results counted at it.
    const nlohmann::json metrics = read_json(run / emt::kMetricsFile);
    const double threshold = runs.number(i, "threshold");
    EXPECT_NEAR(threshold, metrics["threshold"].get<double>(), 1e-6);
    EXPECT_EQ(metrics["operating_point"]["chosen_on"], "val");
    const emt::SafetensorsFile weights = emt::read_safetensors(run / emt::kWeightsFile);
    EXPECT_NEAR(std::stod(weights.metadata.at("threshold")), threshold, 1e-6);
    const Recomputed r = recompute(run);
    const std::string what = "seed " + seed + " fold " + fold;
    emt::test::expect_field(runs.number(i, "acc"), r.acc, what + " acc");
    emt::test::expect_field(runs.number(i, "sen"), r.sen, what + " sen");
    emt::test::expect_field(runs.number(i, "spe"), r.spe, what + " spe");
    emt::test::expect_auc(runs.number(i, "auc"), r, what + " auc");
    EXPECT_NEAR(runs.number(i, "dsc"), metrics["dsc"].get<double>(), 1e-6) << what;

    // The run tested on its fold's part of the data, loaded independently of the job.
    const emt::GraphFile file = emt::parse_graph_file(cv.graph, [&] {
      std::vector<std::string> s = settings();
      s.push_back("data.folds=4");
      s.push_back("data.fold=" + std::to_string(2 * (i % 2)));
      return s;
    }());
    const emt::Dataset data = emt::load_dataset(file.config, 1);
    std::vector<std::string> tested = r.ids;
    std::sort(tested.begin(), tested.end());
    EXPECT_EQ(tested, ids_of(data, data.split.test)) << what;
    if (seed == "1") {
      fold_test_ids[fold] = tested;
      for (const auto* part : {&data.split.test, &data.split.val})
        for (const std::string& id : ids_of(data, *part)) ++held_out[id];
    } else {
      EXPECT_EQ(tested, fold_test_ids[fold]) << what << ": seeds must share the folds";
    }
    for (const emt::PerImageRow& row : emt::read_per_image(run)) {
      pooled_probs[seed].push_back(static_cast<float>(row.prob));
      pooled_labels[seed].push_back(row.label);
    }
  }
  // Test parts are disjoint across folds; test and val parts together hold every image once.
  std::vector<std::string> both;
  std::set_intersection(fold_test_ids["1"].begin(), fold_test_ids["1"].end(),
                        fold_test_ids["2"].begin(), fold_test_ids["2"].end(),
                        std::back_inserter(both));
  EXPECT_TRUE(both.empty()) << both.size() << " images tested in both folds";
  EXPECT_EQ(held_out.size(), static_cast<size_t>(kImages));
  for (const auto& [id, folds] : held_out) EXPECT_EQ(folds, 1) << id;

  // The summary: a naive mean, sd (n - 1) and t interval of each cv_runs.csv column.
  const Csv summary = read_csv(cv.job_dir / emt::kCvSummaryCsv);
  ASSERT_EQ(summary.rows.size(), 6u);
  const nlohmann::json json = read_json(cv.job_dir / emt::kCvSummaryJson);
  for (size_t m = 0; m < summary.rows.size(); ++m) {
    const std::string metric = summary.at(m, "metric");
    std::vector<double> v;
    for (size_t i = 0; i < runs.rows.size(); ++i)
      if (!std::isnan(runs.number(i, metric))) v.push_back(runs.number(i, metric));
    ASSERT_GE(v.size(), 2u) << metric;
    double sum = 0, squares = 0;
    for (double x : v) sum += x;
    const double mean = sum / static_cast<double>(v.size());
    for (double x : v) squares += (x - mean) * (x - mean);
    const double sd = std::sqrt(squares / static_cast<double>(v.size() - 1));
    const double half = t975(static_cast<int>(v.size())) * sd / std::sqrt(v.size());
    EXPECT_EQ(summary.at(m, "n"), std::to_string(v.size())) << metric;
    EXPECT_NEAR(summary.number(m, "mean"), mean, 2e-6) << metric;
    EXPECT_NEAR(summary.number(m, "sd"), sd, 2e-6) << metric;
    EXPECT_NEAR(summary.number(m, "ci_low"), mean - half, 1e-5) << metric;
    EXPECT_NEAR(summary.number(m, "ci_high"), mean + half, 1e-5) << metric;
    EXPECT_NEAR(json["metrics"][metric]["mean"].get<double>(), mean, 2e-6) << metric;
  }

  // The pooled out-of-fold ROC of each seed: its AUC by counting pairs of the pooled scores.
  const Csv roc = read_csv(cv.job_dir / emt::kPooledRocCsv);
  ASSERT_EQ(json["pooled_roc"].size(), 2u);
  for (const auto& entry : json["pooled_roc"]) {
    const std::string seed = std::to_string(entry["seed"].get<int>());
    const std::vector<float>& probs = pooled_probs[seed];
    const std::vector<int>& labels = pooled_labels[seed];
    EXPECT_EQ(entry["images"].get<size_t>(), static_cast<size_t>(kImages / 2));
    double wins = 0, pairs = 0;
    for (size_t a = 0; a < probs.size(); ++a)
      for (size_t b = 0; b < probs.size(); ++b)
        if (labels[a] == 1 && labels[b] == 0) {
          wins += probs[a] > probs[b] ? 1 : probs[a] == probs[b] ? 0.5 : 0;
          ++pairs;
        }
    EXPECT_NEAR(entry["auc"].get<double>(), wins / pairs, 1e-9) << "seed " << seed;
    std::vector<size_t> rows;
    for (size_t i = 0; i < roc.rows.size(); ++i)
      if (roc.at(i, "seed") == seed) rows.push_back(i);
    ASSERT_GE(rows.size(), 2u);
    EXPECT_EQ(roc.at(rows.front(), "threshold"), "inf");
    EXPECT_EQ(roc.number(rows.back(), "fpr"), 1.0);
    EXPECT_EQ(roc.number(rows.back(), "tpr"), 1.0);
  }
  const std::string md = emt::read_file(cv.job_dir / emt::kCvReportMarkdown);
  EXPECT_NE(md.find("| ACC | 4 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| DSC | 4 |"), std::string::npos) << md;
}

TEST_F(CvJob, ARerunSkipsFinishedRunsAndReEvaluatesOnlyTheInterruptedOne) {
  const emt::CvSpec cv = spec(1);
  emt::cross_validation(cv);
  const std::string table = emt::read_file(cv.job_dir / emt::kCvRunsCsv);
  const std::map<std::string, std::string> finished =
      emt::test::snapshot(cv.job_dir / "seed1_fold1");
  fs::remove(cv.job_dir / "seed1_fold2" / emt::kMetricsFile);

  std::ostringstream console;
  emt::cross_validation(cv, {.console = &console});
  const std::string log = console.str();
  EXPECT_EQ(emt::test::count(log, "finished before"), 1u) << log;
  EXPECT_NE(log.find("[2/2] seed 1 fold 2/2: resuming from its checkpoint"), std::string::npos)
      << log;
  EXPECT_EQ(emt::test::snapshot(cv.job_dir / "seed1_fold1"), finished);
  EXPECT_EQ(emt::read_file(cv.job_dir / emt::kCvRunsCsv), table);

  // The same directory refuses another job: here, more seeds.
  EXPECT_THROW(emt::cross_validation(spec(2)), std::runtime_error);
}

TEST_F(CvJob, ASegmentationGraphIsSummarisedOnItsMasksAlone) {
  std::string segmentation_only(emt::test::kTinyGraph);
  const std::string outputs = R"(outputs = { cls = "cls_prob", seg = "seg_prob" })";
  segmentation_only.replace(segmentation_only.find(outputs), outputs.size(),
                            R"(outputs = { seg = "seg_prob" })");
  emt::CvSpec cv = spec(1);
  cv.graph = write("seg.toml", segmentation_only);
  const emt::CvReport report = emt::cross_validation(cv);
  EXPECT_TRUE(report.pooled.empty());
  EXPECT_FALSE(fs::exists(cv.job_dir / emt::kPooledRocCsv));
  const Csv runs = read_csv(cv.job_dir / emt::kCvRunsCsv);
  ASSERT_EQ(runs.rows.size(), 2u);
  const Csv summary = read_csv(cv.job_dir / emt::kCvSummaryCsv);
  for (size_t m = 0; m < summary.rows.size(); ++m) {
    const std::string metric = summary.at(m, "metric");
    const bool mask = metric == "dsc" || metric == "iou";
    EXPECT_EQ(summary.at(m, "n"), mask ? "2" : "0") << metric;
    if (!mask) {
      EXPECT_TRUE(std::isnan(runs.number(0, metric))) << metric;
    }
  }
  EXPECT_TRUE(std::isnan(runs.number(0, "threshold")));
  EXPECT_EQ(setting(cv.job_dir / "seed1_fold1", "eval", "target_sensitivity"), "0.0");
  const std::string md = emt::read_file(cv.job_dir / emt::kCvReportMarkdown);
  EXPECT_EQ(md.find("| ACC |"), std::string::npos) << md;
  EXPECT_NE(md.find("| DSC | 2 |"), std::string::npos) << md;
}

TEST_F(CvJob, BadFoldsSeedsOrTargetsAreRefusedBeforeAnyTraining) {
  emt::CvSpec cv = spec(1);
  cv.folds = 1;
  EXPECT_THROW(emt::cross_validation(cv), std::invalid_argument);
  cv = spec(0);
  EXPECT_THROW(emt::cross_validation(cv), std::invalid_argument);
  cv = spec(1);
  cv.target_sensitivity = 1.5;
  EXPECT_THROW(emt::cross_validation(cv), std::invalid_argument);
  cv = spec(1);
  cv.overrides.push_back("eval.target_sensitivity=0.95");  // not the job's 0.9
  EXPECT_THROW(emt::cross_validation(cv), std::invalid_argument);
  EXPECT_FALSE(fs::exists(cv.job_dir));
}

}  // namespace
