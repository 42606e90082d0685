// The C interface (mobile/emtnet.h) against the C++ pieces it strings together, and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mobile/artifact.h"
#include "mobile/emtnet.h"
#include "mobile/preprocess.h"
#include "mobile/runtime.h"

namespace {

namespace fs = std::filesystem;
using namespace emt::mobile;

// image [1,8,8] -> 3x3 conv to one channel -> sigmoid (seg); GAP -> dense -> sigmoid (cls).
Artifact tiny_model() {
  Artifact a;
  a.graph = "c_api";
  a.values = {{"image", 1, 8, 8}, {"seg_logit", 1, 8, 8}, {"seg", 1, 8, 8},
              {"gap", 1, 1, 1},   {"cls_logit", 1, 1, 1}, {"cls", 1, 1, 1}};
  a.image = 0;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 9 + 1 + 1 + 1; ++i) a.weights.push_back(u(rng));
  a.steps = {{StepKind::kConv2d,
              "seg_logit",
              {0},
              1,
              {1, 8, 8, 1, 8, 8, 3, 1, 1, 1, 1, 1, 1, Activation::kNone},
              {0, 9},
              {9, 1}},
             {StepKind::kSigmoid, "seg_prob", {1}, 2, {}, {}, {}},
             {StepKind::kGlobalAvgPool, "gap", {0}, 3, {}, {}, {}},
             {StepKind::kDense, "cls_logit", {3}, 4, {}, {10, 1}, {11, 1}},
             {StepKind::kSigmoid, "cls_prob", {4}, 5, {}, {}, {}}};
  a.outputs = {{"cls", 5}, {"seg", 2}};
  a.metadata = {
      {"input_size", "8"}, {"norm_mean", "0.5"}, {"norm_std", "0.25"}, {"threshold", "0.375"}};
  return a;
}

class CApi : public ::testing::Test {
 protected:
  fs::path write(const Artifact& a, const std::string& name) {
    const fs::path path =
        fs::temp_directory_path() /
        (name + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
    write_artifact(a, path);
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const fs::path& p : paths_) fs::remove(p);
  }
  std::vector<fs::path> paths_;
};

TEST_F(CApi, PredictIsPreprocessRunAndRestoreMask) {
  const Artifact a = tiny_model();
  char error[256] = "";
  emt_model* model = emt_model_load(write(a, "c_api").c_str(), 2, error, sizeof error);
  ASSERT_NE(model, nullptr) << error;
  EXPECT_EQ(emt_model_input_size(model), 8);
  EXPECT_EQ(emt_model_threshold(model), 0.375f);

  // 20 x 13 pixels in rows of 24 bytes, the padding bytes poisoned.
  constexpr int kWidth = 20, kHeight = 13, kStride = 24;
  std::vector<uint8_t> pixels(kStride * kHeight, 255);
  std::mt19937 rng(5);
  for (int y = 0; y < kHeight; ++y)
    for (int x = 0; x < kWidth; ++x) pixels[y * kStride + x] = static_cast<uint8_t>(rng() % 256);
  float probability = -1;
  std::vector<uint8_t> mask(kWidth * kHeight, 7);
  ASSERT_EQ(emt_model_predict(model, pixels.data(), kWidth, kHeight, kStride, &probability,
                              mask.data(), error, sizeof error),
            0)
      << error;

  std::vector<float> input(64);
  preprocess_grey({pixels.data(), kWidth, kHeight, kStride}, 8, 1, 0.5f, 0.25f, input.data());
  Runtime runtime(a, 1);
  runtime.run(input, 1);
  EXPECT_EQ(probability, runtime.output("cls")[0]);
  std::vector<uint8_t> want(kWidth * kHeight);
  restore_mask(runtime.output("seg").data(), 8, kWidth, kHeight, 0.5f, want.data());
  EXPECT_EQ(mask, want);
  EXPECT_GT(std::count(mask.begin(), mask.end(), 255), 0);
  EXPECT_GT(std::count(mask.begin(), mask.end(), 0), 0);
  emt_model_free(model);
}

TEST_F(CApi, ErrorsAreMessagesNotCrashes) {
  char error[256] = "";
  EXPECT_EQ(emt_model_load("/nonexistent/model.emtm", 1, error, sizeof error), nullptr);
  EXPECT_NE(std::string(error).find("/nonexistent/model.emtm"), std::string::npos) << error;
  EXPECT_EQ(emt_model_load(nullptr, 1, nullptr, 0), nullptr);
  EXPECT_EQ(emt_model_load(write(tiny_model(), "zero_threads").c_str(), 0, error, sizeof error),
            nullptr);
  EXPECT_NE(std::string(error).find("thread"), std::string::npos) << error;

  Artifact no_norm = tiny_model();
  no_norm.metadata.erase("norm_std");
  EXPECT_EQ(emt_model_load(write(no_norm, "no_norm").c_str(), 1, error, sizeof error), nullptr);
  EXPECT_NE(std::string(error).find("norm_std"), std::string::npos) << error;

  char small[8];
  EXPECT_EQ(emt_model_load("/nonexistent/model.emtm", 1, small, sizeof small), nullptr);
  EXPECT_EQ(std::string(small).size(), 7u) << "cut to the buffer, NUL-terminated";

  emt_model* model = emt_model_load(write(tiny_model(), "ok").c_str(), 1, error, sizeof error);
  ASSERT_NE(model, nullptr) << error;
  const uint8_t pixel = 9;
  float probability = 0;
  EXPECT_EQ(emt_model_predict(model, &pixel, 0, 1, 1, &probability, nullptr, error, sizeof error),
            -1);
  EXPECT_STRNE(error, "");
  EXPECT_EQ(emt_model_predict(model, nullptr, 1, 1, 1, &probability, nullptr, error, sizeof error),
            -1);
  EXPECT_EQ(emt_model_predict(model, &pixel, 1, 1, 1, &probability, nullptr, nullptr, 0), 0);
  EXPECT_TRUE(std::isfinite(probability));
  emt_model_free(model);
  emt_model_free(nullptr);
}

}  // namespace
