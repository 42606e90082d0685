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

namespace {

using namespace emt::mobile;

Artifact uneven_model() {
  Artifact a;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  const auto weights = [&](uint64_t count) {
    WeightRef ref{a.weights.size(), count};
    for (uint64_t i = 0; i < count; ++i) a.weights.push_back(u(rng));
    return ref;
  };
  const auto value = [&](const char* name, uint32_t c, uint32_t h, uint32_t w) {
    a.values.push_back({name, c, h, w});
    a.outputs[name] = static_cast<uint32_t>(a.values.size() - 1);  // every value compared
    return static_cast<uint32_t>(a.values.size() - 1);
  };
  const auto conv = [&](StepKind kind, const char* name, uint32_t in, uint32_t out, ConvDesc c,
                        bool bias) {
    StepDesc s{kind, name, {in},
               out,  c,    weights(uint64_t{c.cout} * (c.cin / c.groups) * c.kernel * c.kernel),
               {}};
    if (bias) s.bias = weights(kind == StepKind::kConvTranspose2d ? c.cin : c.cout);
    a.steps.push_back(s);
  };
  const auto simple = [&](StepKind kind, const char* name, std::vector<uint32_t> in, uint32_t out) {
    a.steps.push_back({kind, name, std::move(in), out, {}, {}, {}});
  };
  a.graph = "uneven";
  a.image = value("image", 3, 17, 19);
  a.outputs.erase("image");
  const uint32_t stem = value("stem", 19, 9, 10), dw = value("dw", 19, 9, 10),
                 pw = value("pw", 37, 9, 10), up = value("up", 21, 18, 20),
                 side = value("side", 21, 18, 20), skip = value("skip", 21, 18, 20),
                 skip_relu = value("skip_relu", 21, 18, 20), grouped = value("grouped", 9, 18, 20),
                 up1 = value("up1", 13, 18, 20), seg_logit = value("seg_logit", 1, 18, 20),
                 seg = value("seg", 1, 18, 20), gap = value("gap", 37, 1, 1),
                 fc = value("fc", 5, 1, 1), fc_relu = value("fc_relu", 5, 1, 1),
                 cls_logit = value("cls_logit", 1, 1, 1), cls = value("cls", 1, 1, 1);
  conv(StepKind::kConv2d, "stem", a.image, stem,
       {3, 17, 19, 19, 9, 10, 3, 2, 1, 1, 1, 1, 1, Activation::kRelu6}, true);
  conv(StepKind::kConv2d, "dw", stem, dw,
       {19, 9, 10, 19, 9, 10, 3, 1, 19, 1, 1, 1, 1, Activation::kRelu}, true);
  conv(StepKind::kConv2d, "pw", dw, pw, {19, 9, 10, 37, 9, 10, 1, 1, 1, 0, 0, 0, 0}, false);
  conv(StepKind::kConvTranspose2d, "up", pw, up,
       {21, 18, 20, 37, 9, 10, 3, 2, 1, 1, 1, 0, 0, Activation::kRelu}, true);
  conv(StepKind::kConv2d, "side", up, side, {21, 18, 20, 21, 18, 20, 3, 1, 1, 1, 1, 1, 1}, true);
  simple(StepKind::kAdd, "skip", {up, side}, skip);
  simple(StepKind::kRelu, "skip_relu", {skip}, skip_relu);
  conv(StepKind::kConv2d, "grouped", skip_relu, grouped,
       {21, 18, 20, 9, 18, 20, 3, 1, 3, 1, 1, 1, 1, Activation::kRelu}, true);
  conv(StepKind::kConvTranspose2d, "up1", grouped, up1,
       {13, 18, 20, 9, 18, 20, 1, 1, 1, 0, 0, 0, 0}, true);
  conv(StepKind::kConv2d, "seg_logit", up1, seg_logit, {13, 18, 20, 1, 18, 20, 1, 1, 1, 0, 0, 0, 0},
       true);
  simple(StepKind::kSigmoid, "seg_prob", {seg_logit}, seg);
  simple(StepKind::kGlobalAvgPool, "gap", {pw}, gap);
  a.steps.push_back({StepKind::kDense, "fc", {gap}, fc, {}, weights(5 * 37), weights(5)});
  simple(StepKind::kRelu6, "fc_relu", {fc}, fc_relu);
  a.steps.push_back(
      {StepKind::kDense, "cls_logit", {fc_relu}, cls_logit, {}, weights(5), weights(1)});
  simple(StepKind::kSigmoid, "cls_prob", {cls_logit}, cls);
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
