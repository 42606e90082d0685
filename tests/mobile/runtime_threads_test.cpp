// Runtime with threads > 1 against threads = 1: bit-identical outputs, every intermediate value
// included, on a hand-built model with every step kind (and both conv_transpose2d paths, a
// depthwise and a grouped convolution) whose channel counts do not divide into the chunks.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "mobile/artifact.h"
#include "mobile/runtime.h"
#include "tests/mobile/model_builder.h"

namespace {

using namespace emt::mobile;

Artifact uneven_model() {
  test::ModelBuilder m("uneven", 5);
  const uint32_t image = m.value("image", 3, 17, 19), stem = m.value("stem", 19, 9, 10),
                 dw = m.value("dw", 19, 9, 10), pw = m.value("pw", 37, 9, 10),
                 up = m.value("up", 21, 18, 20), side = m.value("side", 21, 18, 20),
                 skip = m.value("skip", 21, 18, 20), skip_relu = m.value("skip_relu", 21, 18, 20),
                 grouped = m.value("grouped", 9, 18, 20), up1 = m.value("up1", 13, 18, 20),
                 seg_logit = m.value("seg_logit", 1, 18, 20), seg = m.value("seg", 1, 18, 20),
                 gap = m.value("gap", 37, 1, 1), fc = m.value("fc", 5, 1, 1),
                 fc_relu = m.value("fc_relu", 5, 1, 1), cls_logit = m.value("cls_logit", 1, 1, 1),
                 cls = m.value("cls", 1, 1, 1);
  m.conv(StepKind::kConv2d, "stem", image, stem,
         {3, 17, 19, 19, 9, 10, 3, 2, 1, 1, 1, 1, 1, Activation::kRelu6}, true);
  m.conv(StepKind::kConv2d, "dw", stem, dw,
         {19, 9, 10, 19, 9, 10, 3, 1, 19, 1, 1, 1, 1, Activation::kRelu}, true);
  m.conv(StepKind::kConv2d, "pw", dw, pw, {19, 9, 10, 37, 9, 10, 1, 1, 1, 0, 0, 0, 0}, false);
  m.conv(StepKind::kConvTranspose2d, "up", pw, up,
         {21, 18, 20, 37, 9, 10, 3, 2, 1, 1, 1, 0, 0, Activation::kRelu}, true);
  m.conv(StepKind::kConv2d, "side", up, side, {21, 18, 20, 21, 18, 20, 3, 1, 1, 1, 1, 1, 1}, true);
  m.step(StepKind::kAdd, "skip", {up, side}, skip);
  m.step(StepKind::kRelu, "skip_relu", {skip}, skip_relu);
  m.conv(StepKind::kConv2d, "grouped", skip_relu, grouped,
         {21, 18, 20, 9, 18, 20, 3, 1, 3, 1, 1, 1, 1, Activation::kRelu}, true);
  m.conv(StepKind::kConvTranspose2d, "up1", grouped, up1,
         {13, 18, 20, 9, 18, 20, 1, 1, 1, 0, 0, 0, 0}, true);
  m.conv(StepKind::kConv2d, "seg_logit", up1, seg_logit,
         {13, 18, 20, 1, 18, 20, 1, 1, 1, 0, 0, 0, 0}, true);
  m.step(StepKind::kSigmoid, "seg_prob", {seg_logit}, seg);
  m.step(StepKind::kGlobalAvgPool, "gap", {pw}, gap);
  m.dense("fc", gap, fc);
  m.step(StepKind::kRelu6, "fc_relu", {fc}, fc_relu);
  m.dense("cls_logit", fc_relu, cls_logit);
  m.step(StepKind::kSigmoid, "cls_prob", {cls_logit}, cls);
  Artifact a = std::move(m.artifact());
  a.image = image;
  // Every value but the image is an output, so that every intermediate is compared.
  for (uint32_t v = 0; v < a.values.size(); ++v)
    if (v != image) a.outputs[a.values[v].name] = v;
  return a;
}

// Every output's bits, by name.
std::vector<std::vector<uint32_t>> outputs(const Runtime& runtime) {
  std::vector<std::vector<uint32_t>> all;
  for (const auto& [name, value] : runtime.artifact().outputs) {
    std::vector<uint32_t> bits;
    for (const float f : runtime.output(name)) bits.push_back(std::bit_cast<uint32_t>(f));
    all.push_back(std::move(bits));
  }
  return all;
}

// The index of the first float whose bits differ (or of the end of the shorter), -1 for none.
int64_t first_difference(const std::vector<uint32_t>& got, const std::vector<uint32_t>& want) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i)
    if (got[i] != want[i]) return static_cast<int64_t>(i);
  return got.size() == want.size() ? -1 : static_cast<int64_t>(std::min(got.size(), want.size()));
}

TEST(MobileRuntimeThreads, OutputsAreBitIdenticalToOneThread) {
  const Artifact a = uneven_model();
  validate(a);
  const uint64_t image_size = a.values[a.image].size();
  std::mt19937 rng(3);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> images(3 * image_size);
  for (float& p : images) p = pixel(rng);

  Runtime single(a, 3);
  EXPECT_EQ(single.threads(), 1);
  single.run(images, 3);
  const auto want3 = outputs(single);
  single.run(std::span(images).first(image_size), 1);
  const auto want1 = outputs(single);
  // The model is not degenerate: the sigmoid outputs spread, activations are not all zero.
  const auto seg = single.output("seg");
  EXPECT_LT(*std::min_element(seg.begin(), seg.end()), 0.45f);
  EXPECT_GT(*std::max_element(seg.begin(), seg.end()), 0.55f);

  const std::vector<std::string> names = [&] {
    std::vector<std::string> n;
    for (const auto& [name, value] : a.outputs) n.push_back(name);
    return n;
  }();
  for (const int threads : {2, 3, 4}) {
    Runtime runtime(a, 3, threads);
    EXPECT_EQ(runtime.threads(), threads);
    for (int repeat = 0; repeat < 2; ++repeat) {
      runtime.run(images, 3);
      const auto got3 = outputs(runtime);
      runtime.run(std::span(images).first(image_size), 1);
      const auto got1 = outputs(runtime);
      for (size_t o = 0; o < names.size(); ++o) {
        EXPECT_EQ(first_difference(got3[o], want3[o]), -1)
            << names[o] << ", batch 3, " << threads << " threads: first differing float";
        EXPECT_EQ(first_difference(got1[o], want1[o]), -1)
            << names[o] << ", batch 1, " << threads << " threads: first differing float";
      }
    }
  }
}

TEST(MobileRuntimeThreads, RefusesFewerThanOneThread) {
  EXPECT_THROW(Runtime(uneven_model(), 1, 0), std::invalid_argument);
  EXPECT_THROW(Runtime(uneven_model(), 1, -1), std::invalid_argument);
}

}  // namespace
