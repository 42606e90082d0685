// Prediction options: test-time augmentation by a left-right mirror (eval.flip_tta) against two
// explicit forward passes, the plain path against one, the largest-region mask
// (eval.largest_region) against keep_largest_region of the plain pass, and `engine eval` recording
// the settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/dsl/parser.h"
#include "engine/eval/eval_command.h"
#include "engine/eval/evaluate.h"
#include "engine/eval/mask_regions.h"
#include "engine/eval/metrics.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

using emt::Sample;

// Three channels (as the pretrained graphs have) and a side of 20, not a power of two: the
// mirror must act on W of every channel plane, whatever the sizes.
constexpr int kChannels = 3;
constexpr int kSide = 20;
// Two batches of evaluate(), the second partial.
constexpr int kSamples = 5;
constexpr int64_t kBatch = 3;

class Predict : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
    std::string graph(emt::test::kTinyGraph);
    const std::string one_channel = "image = [1,";
    graph.replace(graph.find(one_channel), one_channel.size(), "image = [3,");
    file_ = emt::parse_graph_file(write("tiny3.toml", graph),
                                  {"data.input_size=" + std::to_string(kSide)});
  }

  // Random images; each mask a rectangle off the vertical midline, so that mirroring matters.
  static std::vector<Sample> random_samples(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> pixel(0.0f, 1.0f);
    std::vector<Sample> samples(kSamples);
    for (int k = 0; k < kSamples; ++k) {
      Sample& s = samples[static_cast<size_t>(k)];
      s.id = std::to_string(k);
      s.label = k % 2;
      s.image.resize(static_cast<size_t>(kChannels * kSide * kSide));
      for (float& v : s.image) v = pixel(rng);
      s.mask.assign(static_cast<size_t>(kSide * kSide), 0.0f);
      for (int h = 4; h < 12 + k; ++h)
        for (int w = 2; w < 9; ++w) s.mask[static_cast<size_t>(h * kSide + w)] = 1.0f;
    }
    return samples;
  }

  static void mirror_rows(std::vector<float>& values) {
    for (size_t row = 0; row < values.size(); row += kSide)
      std::reverse(values.begin() + static_cast<std::ptrdiff_t>(row),
                   values.begin() + static_cast<std::ptrdiff_t>(row + kSide));
  }

  struct Pass {
    std::vector<float> cls, seg;  // [n], [n * side * side]
    double loss = 0;
  };

  // One plain forward pass over `batch`, at the batch size evaluate() uses for it.
  static Pass forward(emt::Model& model, std::span<const Sample> batch) {
    emt::Executor& exec = model.executor(static_cast<int64_t>(batch.size()), emt::Mode::kEval);
    std::vector<const Sample*> pointers;
    for (const Sample& s : batch) pointers.push_back(&s);
    emt::load_batch(exec, pointers);
    exec.forward();
    const auto& outputs = exec.program().outputs;
    return {exec.read(outputs.at(emt::kClassOutput)), exec.read(outputs.at(emt::kMaskOutput)),
            exec.objective().total};
  }

  // Random weights leave nearly every mask probability below 0.5, where Dice is 0 whatever the
  // mirror does; shifting the mask logits by their median puts half the pixels on either side.
  static void centre_mask_logits(emt::Model& model, std::span<const Sample> samples) {
    std::vector<float> seg = forward(model, samples).seg;
    std::nth_element(seg.begin(), seg.begin() + static_cast<std::ptrdiff_t>(seg.size() / 2),
                     seg.end());
    const float median = seg[seg.size() / 2];
    model.params().at("seg_logit.bias").value.at(0) -= std::log(median / (1 - median));
    model.params().mark_updated();
  }

  static std::vector<int> all_indices() {
    std::vector<int> indices(kSamples);
    for (int k = 0; k < kSamples; ++k) indices[static_cast<size_t>(k)] = k;
    return indices;
  }

  emt::GraphFile file_;
};

// The flip_tta results are, image by image, the average of an explicit pass on the images and
// an explicit pass on their mirrors with the mask mirrored back.
TEST_F(Predict, AveragesThePassOnMirroredImagesMirroredBack) {
  emt::Model model(file_, 7);
  const std::vector<Sample> samples = random_samples(1);
  centre_mask_logits(model, samples);
  std::vector<Sample> mirrored = samples;
  for (Sample& s : mirrored) mirror_rows(s.image);  // every channel plane's rows

  const emt::EvalReport report =
      emt::evaluate(model, samples, all_indices(), kBatch, 0.5, {.flip_tta = true});
  ASSERT_EQ(report.images.size(), static_cast<size_t>(kSamples));
  EXPECT_TRUE(report.predict.flip_tta);

  const size_t per = kSide * kSide;
  double plain_loss = 0;
  // The augmentation must move the figures, or the test proves nothing.
  float largest_prob_change = 0;
  double largest_dice_change = 0;
  std::vector<float> cls, seg_tta;
  for (size_t start = 0; start < samples.size(); start += kBatch) {
    const size_t n = std::min<size_t>(kBatch, samples.size() - start);
    const Pass plain = forward(model, std::span(samples).subspan(start, n));
    Pass flipped = forward(model, std::span(mirrored).subspan(start, n));
    mirror_rows(flipped.seg);
    plain_loss += plain.loss;
    std::vector<const Sample*> batch;
    for (size_t i = 0; i < n; ++i) batch.push_back(&samples[start + i]);
    emt::predict_batch(model.executor(static_cast<int64_t>(n), emt::Mode::kEval), batch,
                       {.flip_tta = true}, cls, seg_tta);
    ASSERT_EQ(seg_tta.size(), n * per);
    for (size_t i = 0; i < n; ++i) {
      const emt::ImageResult& r = report.images[start + i];
      const Sample& s = samples[start + i];
      const float prob = 0.5f * (plain.cls[i] + flipped.cls[i]);
      std::vector<float> seg(per);
      for (size_t k = 0; k < per; ++k) {
        seg[k] = 0.5f * (plain.seg[i * per + k] + flipped.seg[i * per + k]);
        ASSERT_NEAR(seg_tta[i * per + k], seg[k], 1e-6) << s.id << " pixel " << k;
      }
      const emt::MaskScore mask = emt::mask_score(seg, s.mask);
      EXPECT_EQ(r.id, s.id);
      EXPECT_NEAR(r.prob, prob, 1e-6) << s.id;
      EXPECT_NEAR(cls[i], prob, 1e-6) << s.id;
      EXPECT_NEAR(r.mask.dice, mask.dice, 1e-6) << s.id;
      EXPECT_NEAR(r.mask.iou, mask.iou, 1e-6) << s.id;
      largest_prob_change = std::max(largest_prob_change, std::abs(prob - plain.cls[i]));
      const emt::MaskScore plain_mask =
          emt::mask_score(std::span(plain.seg).subspan(i * per, per), s.mask);
      largest_dice_change = std::max(largest_dice_change, std::abs(mask.dice - plain_mask.dice));
    }
  }
  EXPECT_GT(largest_prob_change, 1e-4f);
  EXPECT_GT(largest_dice_change, 1e-3);
  // The objective stays the one on the images as given.
  EXPECT_NEAR(report.loss, plain_loss / 2, 1e-9);
  EXPECT_EQ(emt::report_json(report)["flip_tta"], true);
}

// Off, evaluate() is one plain pass per batch, bit for bit.
TEST_F(Predict, OffIsExactlyOnePlainPass) {
  emt::Model model(file_, 7);
  const std::vector<Sample> samples = random_samples(2);
  const emt::EvalReport report = emt::evaluate(model, samples, all_indices(), kBatch, 0.5);
  EXPECT_FALSE(report.predict.flip_tta);
  const size_t per = kSide * kSide;
  double loss = 0;
  for (size_t start = 0; start < samples.size(); start += kBatch) {
    const size_t n = std::min<size_t>(kBatch, samples.size() - start);
    const Pass plain = forward(model, std::span(samples).subspan(start, n));
    loss += plain.loss;
    for (size_t i = 0; i < n; ++i) {
      const emt::ImageResult& r = report.images[start + i];
      const emt::MaskScore mask =
          emt::mask_score(std::span(plain.seg).subspan(i * per, per), samples[start + i].mask);
      EXPECT_EQ(r.prob, plain.cls[i]) << r.id;
      EXPECT_EQ(r.mask.dice, mask.dice) << r.id;
      EXPECT_EQ(r.mask.iou, mask.iou) << r.id;
    }
  }
  EXPECT_EQ(report.loss, loss / 2);
  EXPECT_EQ(emt::report_json(report)["flip_tta"], false);
}

// With eval.largest_region each image is scored on keep_largest_region of its plain-pass mask.
TEST_F(Predict, LargestRegionScoresTheLargestRegionOfThePlainPass) {
  emt::Model model(file_, 7);
  const std::vector<Sample> samples = random_samples(4);
  centre_mask_logits(model, samples);
  const emt::EvalReport report =
      emt::evaluate(model, samples, all_indices(), kBatch, 0.5, {.largest_region = true});
  EXPECT_TRUE(report.predict.largest_region);
  EXPECT_EQ(emt::report_json(report)["largest_region"], true);
  const size_t per = kSide * kSide;
  int images_with_several_regions = 0;
  for (size_t start = 0; start < samples.size(); start += kBatch) {
    const size_t n = std::min<size_t>(kBatch, samples.size() - start);
    const Pass plain = forward(model, std::span(samples).subspan(start, n));
    for (size_t i = 0; i < n; ++i) {
      std::vector<float> mask(plain.seg.begin() + static_cast<std::ptrdiff_t>(i * per),
                              plain.seg.begin() + static_cast<std::ptrdiff_t>((i + 1) * per));
      if (emt::keep_largest_region(mask, kSide, kSide) > 1) ++images_with_several_regions;
      const emt::MaskScore expected = emt::mask_score(mask, samples[start + i].mask);
      const emt::ImageResult& r = report.images[start + i];
      EXPECT_EQ(r.mask.dice, expected.dice) << r.id;
      EXPECT_EQ(r.mask.iou, expected.iou) << r.id;
      EXPECT_EQ(r.prob, plain.cls[i]) << r.id;
    }
  }
  // Random weights scatter the mask into many regions, or the test would prove nothing.
  EXPECT_GT(images_with_several_regions, 0);
}

// An image that is its own mirror left-right (but not top-bottom, so a mirror of the wrong axis
// would show) gets the same probability with the augmentation as without.
TEST_F(Predict, SymmetricImageKeepsItsProbability) {
  emt::Model model(file_, 5);
  std::vector<Sample> samples = random_samples(3);
  for (Sample& s : samples)
    for (size_t row = 0; row < s.image.size(); row += kSide)
      for (size_t w = 0; w < kSide / 2; ++w) s.image[row + kSide - 1 - w] = s.image[row + w];
  const emt::EvalReport plain =
      emt::evaluate(model, samples, all_indices(), kBatch, 0.5, {.flip_tta = false});
  const emt::EvalReport tta =
      emt::evaluate(model, samples, all_indices(), kBatch, 0.5, {.flip_tta = true});
  for (size_t i = 0; i < samples.size(); ++i)
    EXPECT_EQ(tta.images[i].prob, plain.images[i].prob) << samples[i].id;
}

// `engine eval` takes the setting from --set, records it in metrics.json and says so.
TEST_F(Predict, EvalCommandRecordsAndPrintsIt) {
  std::vector<std::string> sets = emt::test::kSmallData;
  sets.push_back("eval.flip_tta=true");
  const emt::GraphFile file =
      emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), sets);
  EXPECT_FALSE(emt::parse_graph_file(dir_ / "tiny.toml").config.get_bool("eval.flip_tta"));
  const emt::Model model(file, 11);
  emt::SafetensorsFile weights;
  weights.tensors = model.params().to_tensors();
  weights.metadata = {{"input_size", "32"}};
  emt::write_safetensors(dir_ / "w.safetensors", weights);

  emt::EvalCommandOptions options;
  options.weights = dir_ / "w.safetensors";
  options.out_dir = dir_ / "eval";
  options.target_sensitivity = 0.9;
  options.bootstrap_resamples = 50;
  options.overlays = 1;
  std::ostringstream console;
  options.console = &console;
  const emt::EvalCommandResult result = emt::run_eval(file, options);
  EXPECT_TRUE(result.report.predict.flip_tta);
  const nlohmann::json metrics =
      nlohmann::json::parse(emt::test::read_text(dir_ / "eval" / emt::kMetricsFile));
  EXPECT_EQ(metrics["flip_tta"], true);
  EXPECT_NE(console.str().find("test-time augmentation"), std::string::npos) << console.str();
  EXPECT_NE(console.str().find("flip TTA"), std::string::npos) << console.str();
}

}  // namespace
