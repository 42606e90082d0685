// Batch inference (`engine predict`): the image listing, the mask's way back to the image's own
// size, and run_predict against a forward pass of its own on each image.
#include "engine/predict/predict_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/data/readers.h"
#include "engine/dsl/parser.h"
#include "engine/io/csv.h"
#include "engine/io/safetensors.h"
#include "engine/predict/journal.h"
#include "engine/predict/prediction_journal.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "tests/engine/predict_inputs.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::test::read_text;
using emt::test::split;

std::vector<std::string> ids(const std::vector<emt::ImageRef>& images) {
  std::vector<std::string> out;
  for (const emt::ImageRef& image : images) out.push_back(image.id);
  return out;
}

class PredictInputs : public emt::test::TempDirTest {};

TEST_F(PredictInputs, FolderListsImagesRecursivelyInNaturalOrderWithoutMasks) {
  for (const char* name : {"x (10).png", "x (2).jpg", "x (2)_mask.png", "x (2)_mask_1.png",
                           "notes.txt", "sub/b.bmp", "sub/a.JPEG", "sub/deeper/c.png"})
    write(name, "not decoded by the listing");
  EXPECT_EQ(ids(emt::list_images(dir_)),
            (std::vector<std::string>{"sub/a.JPEG", "sub/b.bmp", "sub/deeper/c.png", "x (2).jpg",
                                      "x (10).png"}));
  const auto one = emt::list_images(dir_ / "sub" / "b.bmp");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].id, "b.bmp");
  EXPECT_THROW(emt::list_images(dir_ / "missing"), std::runtime_error);
}

TEST_F(PredictInputs, ManifestTakesTheImageColumnResolvedAgainstItsFolder) {
  write("list/images.csv",
        "label,image,extra\nbenign,a.png,1\n,\"sub/with, comma.png\",\nx,/abs/b.png,\n");
  const auto images = emt::list_images(dir_ / "list" / "images.csv");
  ASSERT_EQ(images.size(), 3u);
  EXPECT_EQ(images[0].path, dir_ / "list" / "a.png");
  EXPECT_EQ(images[1].id, "sub/with, comma.png");
  EXPECT_EQ(images[2].path, fs::path("/abs/b.png"));
  write("bad.csv", "path,label\na.png,1\n");
  try {
    emt::list_images(dir_ / "bad.csv");
    FAIL() << "a manifest without an image column must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:1"), std::string::npos) << e.what();
  }
}

TEST(CsvField, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(emt::csv_field("benign/x (1).png"), "benign/x (1).png");
  EXPECT_EQ(emt::csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(emt::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(emt::csv_field(" padded"), "\" padded\"");
}

// At the network's own size a square mask comes back unchanged.
TEST(RestoreMask, IsTheIdentityForASquareImageAtInputSize) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> probs(24 * 24);
  for (float& p : probs) p = u(rng);
  const cv::Mat mask = emt::restore_mask(probs, 24, {24, 24}, 0.5f);
  ASSERT_EQ(mask.size(), cv::Size(24, 24));
  for (int k = 0; k < 24 * 24; ++k)
    ASSERT_EQ(mask.data[k], probs[static_cast<size_t>(k)] >= 0.5f ? 255 : 0) << k;
  EXPECT_THROW(emt::restore_mask(probs, 23, {24, 24}), std::invalid_argument);
}

// preprocess then restore_mask returns an off-centre ellipse of a wide and of a tall image to
// where it was: high overlap, the same centre within a pixel or two.
TEST(RestoreMask, UndoesPreprocessOnRectangularImages) {
  for (const cv::Size size : {cv::Size(300, 180), cv::Size(140, 260)}) {
    emt::RawSample raw{"r", cv::Mat(size, CV_8U, cv::Scalar(90)), cv::Mat::zeros(size, CV_8U), 0};
    const cv::Point centre(size.width / 3, size.height * 2 / 3);
    cv::ellipse(raw.mask, centre, cv::Size(size.width / 6, size.height / 7), 20, 0, 360,
                cv::Scalar(255), cv::FILLED);
    const emt::Sample sample = emt::preprocess(raw, 64, 1, {});
    const cv::Mat back = emt::restore_mask(sample.mask, 64, size);
    ASSERT_EQ(back.size(), size);
    cv::Mat both, either;
    cv::bitwise_and(back, raw.mask, both);
    cv::bitwise_or(back, raw.mask, either);
    EXPECT_GT(cv::countNonZero(both), 0.9 * cv::countNonZero(either)) << size;
    const cv::Moments m = cv::moments(back, true);
    EXPECT_NEAR(m.m10 / m.m00, centre.x, 2.0) << size;
    EXPECT_NEAR(m.m01 / m.m00, centre.y, 2.0) << size;
  }
}

class PredictCommand : public emt::test::TempDirTest {
 protected:
  static constexpr int kSide = 32;

  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
    file_ = emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), emt::test::kSmallData);
    std::mt19937 rng(5);
    emt::test::write_noise_images(dir_,
                                  {{"img/a (2).png", {40, 30}},
                                   {"img/a (10).png", {50, 50}},
                                   {"img/sub/c.jpg", {25, 61}},
                                   {"img/d.bmp", {33, 33}},
                                   {"img/e.png", {70, 20}}},
                                  rng);
    write("img/broken.png", "this is not a PNG");
    weights_ = dir_ / "weights.safetensors";
    emt::test::write_predict_weights(file_, weights_, kSide);
  }

  // The network's outputs for one image file, through a batch-1 forward pass of its own.
  struct Output {
    float prob = 0;
    std::vector<float> seg;
    cv::Size size;
  };
  Output forward(const fs::path& path) {
    emt::Model model(file_, 0);
    model.params().load_tensors(emt::read_safetensors(weights_), weights_.string());
    const cv::Mat image = cv::imread(path.string(), cv::IMREAD_GRAYSCALE);
    const emt::Sample sample = emt::preprocess({"x", image, cv::Mat::zeros(image.size(), CV_8U), 0},
                                               kSide, 1, {0.5f, 0.25f});
    emt::Executor& exec = model.executor(1, emt::Mode::kEval);
    const emt::Sample* batch[] = {&sample};
    emt::load_batch(exec, batch);
    exec.forward();
    const auto& outputs = exec.program().outputs;
    return {exec.read(outputs.at(emt::kClassOutput)).at(0), exec.read(outputs.at(emt::kMaskOutput)),
            image.size()};
  }

  emt::PredictCommandOptions options(const std::string& out) const {
    emt::PredictCommandOptions o;
    o.weights = weights_;
    o.source = dir_ / "img";
    o.out_dir = dir_ / out;
    o.batch = 3;  // two batches, the second partial and one image short (broken.png)
    o.backend = emt::Backend::kReference;
    return o;
  }

  emt::GraphFile file_;
  fs::path weights_;
};

TEST_F(PredictCommand, EveryReadableImageGetsItsOwnForwardPassResultAtItsOwnSize) {
  const emt::PredictCommandResult result = emt::run_predict(file_, options("out"));
  EXPECT_EQ(result.predicted, 5);
  ASSERT_EQ(result.skipped.size(), 1u);
  EXPECT_EQ(result.skipped[0].path, (dir_ / "img" / "broken.png").string());
  EXPECT_EQ(result.threshold, 0.375);

  const std::vector<std::string> lines =
      split(read_text(dir_ / "out" / emt::kPredictionsFile), '\n');
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "image,prob,malignant,lesion_fraction,mask");
  const std::vector<std::string> order = {"a (2).png", "a (10).png", "d.bmp", "e.png", "sub/c.jpg"};
  int masks_with_both_sides = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    const std::vector<std::string> f = split(lines[r + 1], ',');
    ASSERT_EQ(f.size(), 5u) << lines[r + 1];
    EXPECT_EQ(f[0], order[r]);
    const Output want = forward(dir_ / "img" / order[r]);
    const double prob = std::stod(f[1]);
    EXPECT_NEAR(prob, want.prob, 1e-5) << order[r];
    EXPECT_EQ(f[2], prob >= 0.375 ? "1" : "0") << order[r];
    const cv::Mat mask = cv::imread((dir_ / "out" / f[4]).string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(mask.size(), want.size) << f[4];
    const cv::Mat expected = emt::restore_mask(want.seg, kSide, want.size);
    cv::Mat differ;
    cv::compare(mask, expected, differ, cv::CMP_NE);
    EXPECT_EQ(cv::countNonZero(differ), 0) << order[r];
    const int lesion = cv::countNonZero(mask);
    EXPECT_NEAR(std::stod(f[3]), static_cast<double>(lesion) / static_cast<double>(mask.total()),
                1e-5);
    masks_with_both_sides += lesion > 0 && lesion < static_cast<int>(mask.total());
  }
  EXPECT_GE(masks_with_both_sides, 3) << "the comparison above must see real masks";
  EXPECT_EQ(split(read_text(dir_ / "out" / emt::kSkippedFile), '\n').size(), 2u);
  const nlohmann::json summary =
      nlohmann::json::parse(read_text(dir_ / "out" / emt::kPredictSummaryFile));
  EXPECT_EQ(summary["predicted"], 5);
  EXPECT_EQ(summary["skipped"], 1);
  EXPECT_EQ(summary["threshold_source"], "weights metadata");
}

TEST_F(PredictCommand, StrictStopsAtTheUnreadableImageAndNoMasksWritesNone) {
  std::vector<std::string> sets = emt::test::kSmallData;
  sets.push_back("data.strict=true");
  const emt::GraphFile strict = emt::parse_graph_file(dir_ / "tiny.toml", sets);
  try {
    emt::run_predict(strict, options("strict"));
    FAIL() << "data.strict must stop at broken.png";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "strict" / emt::kPredictionsFile));

  emt::PredictCommandOptions o = options("plain");
  o.write_masks = false;
  o.threshold = 0.0;
  emt::run_predict(file_, o);
  EXPECT_FALSE(fs::exists(dir_ / "plain" / emt::kMaskDir));
  const std::vector<std::string> lines =
      split(read_text(dir_ / "plain" / emt::kPredictionsFile), '\n');
  ASSERT_EQ(lines.size(), 6u);
  for (size_t r = 1; r < lines.size(); ++r) {
    const std::vector<std::string> f = split(lines[r], ',');
    EXPECT_EQ(f[2], "1") << "threshold 0 calls every image malignant";
    EXPECT_EQ(f.size(), 4u) << "no mask column value: " << lines[r];
  }
}

// A job cut back to its first two records, with half of the third after them as a kill leaves
// it, continues: the two are not predicted again (a value changed in the journal reaches
// predictions.csv), the torn one and the rest are, and the outputs equal an uninterrupted run's.
TEST_F(PredictCommand, ResumeTakesTheJournalsImagesAndPredictsTheRest) {
  emt::run_predict(file_, options("ref"));
  emt::run_predict(file_, options("out"));
  const fs::path out = dir_ / "out";
  const std::vector<std::string> lines = split(read_text(out / emt::kPredictJournalFile), '\n');
  ASSERT_EQ(lines.size(), 7u) << "a header and six images (broken.png among them)";
  const std::string payload = lines[1].substr(0, lines[1].rfind('\t'));
  emt::PredictionRecord first = emt::parse_prediction_record(payload);
  ASSERT_EQ(first.image.path, (dir_ / "img" / "a (2).png").string());
  first.row = "0.999" + first.row.substr(first.row.find(','));
  write("out/" + std::string(emt::kPredictJournalFile),
        lines[0] + "\n" + emt::frame_record(emt::prediction_record_payload(first)) + lines[2] +
            "\n" + lines[3].substr(0, lines[3].size() / 2));
  fs::remove(out / emt::kPredictionsFile);
  fs::remove(out / "masks" / "d.png");

  EXPECT_THROW(emt::run_predict(file_, options("out")), std::runtime_error)
      << "a folder holding a journal needs --resume";
  emt::PredictCommandOptions resume = options("out");
  resume.resume = true;
  const emt::PredictCommandResult result = emt::run_predict(file_, resume);
  EXPECT_EQ(result.from_journal, 2);
  EXPECT_EQ(result.predicted, 5);
  std::vector<std::string> want = split(read_text(dir_ / "ref" / emt::kPredictionsFile), '\n');
  want[1] = "a (2).png,0.999" + want[1].substr(want[1].find(',', want[1].find(',') + 1));
  ASSERT_NE(want[1].find("a (2).png,0.999,"), std::string::npos) << want[1];
  EXPECT_EQ(split(read_text(out / emt::kPredictionsFile), '\n'), want);
  EXPECT_EQ(read_text(out / "masks" / "d.png"), read_text(dir_ / "ref" / "masks" / "d.png"));
  const emt::JournalScan scan = emt::scan_journal(read_text(out / emt::kPredictJournalFile));
  EXPECT_EQ(scan.first_invalid_line, 0u);
  EXPECT_EQ(scan.payloads.size(), 7u) << "nothing duplicated, nothing lost";

  resume.threshold = 0.5;
  try {
    emt::run_predict(file_, resume);
    FAIL() << "a job with another threshold must not continue this one";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("threshold: 0.375 in the journal, 0.5 now"),
              std::string::npos)
        << e.what();
  }
}

// A source that changed since the job ran: an image added and one rewritten (another size) are
// predicted, the others taken from the journal.
TEST_F(PredictCommand, ResumePredictsTheImagesAddedOrRewrittenSince) {
  emt::run_predict(file_, options("out"));
  std::mt19937 rng(9);
  emt::test::write_noise_images(dir_, {{"img/f.png", {45, 38}}, {"img/d.bmp", {29, 52}}}, rng);
  emt::PredictCommandOptions resume = options("out");
  resume.resume = true;
  const emt::PredictCommandResult result = emt::run_predict(file_, resume);
  EXPECT_EQ(result.from_journal, 5) << "six images, d.bmp among them, less d.bmp";
  EXPECT_EQ(result.predicted, 6);
  const std::vector<std::string> lines =
      split(read_text(dir_ / "out" / emt::kPredictionsFile), '\n');
  ASSERT_EQ(lines.size(), 7u);
  for (const auto& [row, name] : {std::pair<size_t, std::string>{3, "d.bmp"}, {5, "f.png"}}) {
    const std::vector<std::string> f = split(lines[row], ',');
    ASSERT_EQ(f[0], name);
    EXPECT_NEAR(std::stod(f[1]), forward(dir_ / "img" / name).prob, 1e-5) << name;
    EXPECT_EQ(cv::imread((dir_ / "out" / f[4]).string(), cv::IMREAD_UNCHANGED).size(),
              forward(dir_ / "img" / name).size)
        << name;
  }
}

}  // namespace
