// The mobile runtime on a hand-built artifact with every step kind, against naive loops written
// from the ops' definitions; the artifact checks and file round trip. Needs nothing but ops/ and
// mobile/, so it runs in the aarch64 build under qemu as well as on x86 (NEON through SIMDe).
#include "mobile/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mobile/artifact.h"
#include "tests/mobile/model_builder.h"

namespace {

namespace fs = std::filesystem;
using namespace emt::mobile;

// One image's activations, indexed [c][y][x].
struct Planes {
  int c = 0, h = 0, w = 0;
  std::vector<float> v;
  float& at(int ci, int y, int x) { return v[static_cast<size_t>((ci * h + y) * w + x)]; }
  float at(int ci, int y, int x) const { return v[static_cast<size_t>((ci * h + y) * w + x)]; }
};

float activate(Activation a, float x) {
  if (a == Activation::kNone) return x;
  x = std::max(x, 0.0f);
  return a == Activation::kRelu6 ? std::min(x, 6.0f) : x;
}

// y[co][oy][ox] = act(b[co] + sum w[co][ci'][ky][kx] x[g*cin_g + ci'][oy*s - pt + ky][ox*s - pl +
// kx])
Planes naive_conv(const ConvDesc& c, const Planes& x, const float* w, const float* b) {
  Planes y{static_cast<int>(c.cout), static_cast<int>(c.ho), static_cast<int>(c.wo), {}};
  y.v.assign(static_cast<size_t>(y.c * y.h * y.w), 0.0f);
  const int cin_g = static_cast<int>(c.cin / c.groups),
            cout_g = static_cast<int>(c.cout / c.groups);
  const int k = static_cast<int>(c.kernel);
  for (int co = 0; co < y.c; ++co)
    for (int oy = 0; oy < y.h; ++oy)
      for (int ox = 0; ox < y.w; ++ox) {
        double sum = b ? b[co] : 0.0;
        for (int ci = 0; ci < cin_g; ++ci)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int iy = oy * static_cast<int>(c.stride) - static_cast<int>(c.pad_top) + ky;
              const int ix = ox * static_cast<int>(c.stride) - static_cast<int>(c.pad_left) + kx;
              if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
              sum += double(w[((co * cin_g + ci) * k + ky) * k + kx]) *
                     x.at((co / cout_g) * cin_g + ci, iy, ix);
            }
        y.at(co, oy, ox) = activate(c.activation, static_cast<float>(sum));
      }
  return y;
}

// The adjoint: every input element scatters through the kernel onto the (larger) output.
Planes naive_conv_transpose(const ConvDesc& c, const Planes& in, const float* w, const float* b) {
  Planes out{static_cast<int>(c.cin), static_cast<int>(c.h), static_cast<int>(c.w), {}};
  std::vector<double> acc(static_cast<size_t>(out.c * out.h * out.w), 0.0);
  const int k = static_cast<int>(c.kernel);
  for (int co = 0; co < in.c; ++co)
    for (int oy = 0; oy < in.h; ++oy)
      for (int ox = 0; ox < in.w; ++ox)
        for (int ci = 0; ci < out.c; ++ci)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int iy = oy * static_cast<int>(c.stride) - static_cast<int>(c.pad_top) + ky;
              const int ix = ox * static_cast<int>(c.stride) - static_cast<int>(c.pad_left) + kx;
              if (iy < 0 || iy >= out.h || ix < 0 || ix >= out.w) continue;
              acc[static_cast<size_t>((ci * out.h + iy) * out.w + ix)] +=
                  double(w[((co * out.c + ci) * k + ky) * k + kx]) * in.at(co, oy, ox);
            }
  out.v.resize(acc.size());
  for (size_t i = 0; i < acc.size(); ++i)
    out.v[i] = activate(
        c.activation,
        static_cast<float>(acc[i] + (b ? b[i / static_cast<size_t>(out.h * out.w)] : 0.0)));
  return out;
}

float sigmoid(float x) { return static_cast<float>(1.0 / (1.0 + std::exp(-double(x)))); }

// image [3,9,10] -> conv 3x3 s2 (TF-SAME-like: pad 0 before, 1 after) relu6 -> depthwise 3x3 relu
// -> 1x1 without bias -> transposed 3x3 s2 relu (back to 8x10) -> 3x3 conv -> add (skip) -> 3x3
// to one channel -> sigmoid (seg); GAP of the depthwise output -> dense relu -> dense -> sigmoid.
class MobileRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    test::ModelBuilder m("handmade", 11);
    const uint32_t image = m.value("image", 3, 9, 10), stem = m.value("stem", 8, 4, 5),
                   dw = m.value("dw", 8, 4, 5), pw = m.value("pw", 6, 4, 5),
                   up = m.value("up", 4, 8, 10), side = m.value("side", 4, 8, 10),
                   skip = m.value("skip", 4, 8, 10), seg_logit = m.value("seg_logit", 1, 8, 10),
                   seg = m.value("seg", 1, 8, 10), gap = m.value("gap", 8, 1, 1),
                   fc = m.value("fc", 5, 1, 1), fc_relu = m.value("fc_relu", 5, 1, 1),
                   cls_logit = m.value("cls_logit", 1, 1, 1), cls = m.value("cls", 1, 1, 1);
    m.conv(StepKind::kConv2d, "stem", image, stem,
           {3, 9, 10, 8, 4, 5, 3, 2, 1, 0, 0, 1, 1, Activation::kRelu6}, true);
    m.conv(StepKind::kConv2d, "dw", stem, dw,
           {8, 4, 5, 8, 4, 5, 3, 1, 8, 1, 1, 1, 1, Activation::kRelu}, true);
    m.conv(StepKind::kConv2d, "pw", dw, pw,
           {8, 4, 5, 6, 4, 5, 1, 1, 1, 0, 0, 0, 0, Activation::kNone}, false);
    m.conv(StepKind::kConvTranspose2d, "up", pw, up,
           {4, 8, 10, 6, 4, 5, 3, 2, 1, 1, 1, 1, 1, Activation::kRelu}, true);
    m.conv(StepKind::kConv2d, "side", up, side,
           {4, 8, 10, 4, 8, 10, 3, 1, 1, 1, 1, 1, 1, Activation::kNone}, true);
    m.step(StepKind::kAdd, "skip", {up, side}, skip);
    m.conv(StepKind::kConv2d, "seg_logit", skip, seg_logit,
           {4, 8, 10, 1, 8, 10, 3, 1, 1, 1, 1, 1, 1, Activation::kNone}, true);
    m.step(StepKind::kSigmoid, "seg_prob", {seg_logit}, seg);
    m.step(StepKind::kGlobalAvgPool, "gap", {dw}, gap);
    m.dense("fc", gap, fc);
    m.step(StepKind::kRelu, "fc_relu", {fc}, fc_relu);
    m.dense("cls_logit", fc_relu, cls_logit);
    m.step(StepKind::kSigmoid, "cls_prob", {cls_logit}, cls);
    a_ = std::move(m.artifact());
    a_.image = image;
    a_.outputs = {{"cls", cls}, {"seg", seg}};
    a_.targets = {{"label", 1, 1, 1}, {"mask", 1, 8, 10}};
    a_.objective = {{emt::LossKind::kWeightedBce, cls_logit, 0, 3.0, 1.5, 1.0},
                    {emt::LossKind::kDice, seg, 1, 1.0, 1.0, 1.0}};
    a_.metadata = {{"input_size", "10"}};
  }

  // Every value of one image through the naive loops, by value index.
  std::vector<Planes> naive_run(const std::vector<float>& image) const {
    std::vector<Planes> v(a_.values.size());
    const ValueDesc& in = a_.values[a_.image];
    v[a_.image] = {static_cast<int>(in.channels), static_cast<int>(in.height),
                   static_cast<int>(in.width), image};
    for (const StepDesc& s : a_.steps) {
      const Planes& x = v[s.inputs[0]];
      const float* w = a_.weights.data() + s.weight.offset;
      const float* b = s.bias.count ? a_.weights.data() + s.bias.offset : nullptr;
      Planes y = x;
      switch (s.kind) {
        case StepKind::kConv2d:
          y = naive_conv(s.conv, x, w, b);
          break;
        case StepKind::kConvTranspose2d:
          y = naive_conv_transpose(s.conv, x, w, b);
          break;
        case StepKind::kAdd:
          for (size_t i = 0; i < y.v.size(); ++i) y.v[i] += v[s.inputs[1]].v[i];
          break;
        case StepKind::kGlobalAvgPool:
          y = {x.c, 1, 1, std::vector<float>(static_cast<size_t>(x.c))};
          for (int c = 0; c < x.c; ++c) {
            double sum = 0;
            for (int i = 0; i < x.h * x.w; ++i) sum += x.v[static_cast<size_t>(c * x.h * x.w + i)];
            y.v[static_cast<size_t>(c)] = static_cast<float>(sum / (x.h * x.w));
          }
          break;
        case StepKind::kDense: {
          const int out = static_cast<int>(a_.values[s.output].channels);
          y = {out, 1, 1, std::vector<float>(static_cast<size_t>(out))};
          for (int o = 0; o < out; ++o) {
            double sum = b ? b[o] : 0.0;
            for (int k = 0; k < x.c; ++k)
              sum += double(w[o * x.c + k]) * x.v[static_cast<size_t>(k)];
            y.v[static_cast<size_t>(o)] = static_cast<float>(sum);
          }
          break;
        }
        case StepKind::kRelu:
          for (float& e : y.v) e = std::max(e, 0.0f);
          break;
        case StepKind::kRelu6:
          for (float& e : y.v) e = std::min(std::max(e, 0.0f), 6.0f);
          break;
        case StepKind::kSigmoid:
          for (float& e : y.v) e = sigmoid(e);
          break;
      }
      v[s.output] = std::move(y);
    }
    return v;
  }

  Artifact a_;
};

TEST_F(MobileRuntime, EveryStepKindMatchesNaiveLoopsOnABatch) {
  constexpr int kBatch = 3;
  std::mt19937 rng(2);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  std::bernoulli_distribution coin(0.5);
  const uint64_t image_size = a_.values[a_.image].size();
  std::vector<float> images(image_size * kBatch), labels{1, 0, 1}, masks(80 * kBatch);
  for (float& p : images) p = pixel(rng);
  for (float& m : masks) m = coin(rng) ? 1.0f : 0.0f;

  Runtime runtime(a_, kBatch);
  runtime.run(images, kBatch);
  const auto cls = runtime.output("cls"), seg = runtime.output("seg");
  ASSERT_EQ(cls.size(), 3u);
  ASSERT_EQ(seg.size(), 240u);
  double wbce = 0, dice = 0, seg_min = 1, seg_max = 0;
  for (int n = 0; n < kBatch; ++n) {
    const std::vector<Planes> want = naive_run(
        std::vector<float>(images.begin() + n * image_size, images.begin() + (n + 1) * image_size));
    EXPECT_NEAR(cls[n], want[a_.outputs.at("cls")].v[0], 1e-5) << "image " << n;
    const std::vector<float>& want_seg = want[a_.outputs.at("seg")].v;
    double overlap = 0, sums = 0;
    for (size_t i = 0; i < want_seg.size(); ++i) {
      ASSERT_NEAR(seg[n * 80 + i], want_seg[i], 1e-5) << "image " << n << " pixel " << i;
      seg_min = std::min<double>(seg_min, want_seg[i]);
      seg_max = std::max<double>(seg_max, want_seg[i]);
      overlap += want_seg[i] * masks[n * 80 + i];
      sums += want_seg[i] + masks[n * 80 + i];
    }
    // The paper's loss, written out: weighted BCE on the logit (W_p = 1.5), soft Dice (eps 1).
    const double z = want[a_.objective[0].input].v[0], y = labels[static_cast<size_t>(n)];
    wbce += ((1 - y) * z + (1 + y * 0.5) * std::log1p(std::exp(-z))) / kBatch;
    dice += (1 - (2 * overlap + 1) / (sums + 1)) / kBatch;
  }
  EXPECT_LT(seg_min, 0.4);
  EXPECT_GT(seg_max, 0.6);
  const std::span<const float> targets[] = {labels, masks};
  const emt::ObjectiveValue loss = runtime.objective(targets);
  ASSERT_EQ(loss.terms.size(), 2u);
  EXPECT_NEAR(loss.terms[0], wbce, 1e-5);
  EXPECT_NEAR(loss.terms[1], dice, 1e-5);
  EXPECT_NEAR(loss.total, 3.0 * wbce + dice, 1e-5);

  // A smaller batch reuses the arena; image 0 gives the same outputs alone.
  runtime.run(std::span(images).first(image_size), 1);
  EXPECT_EQ(runtime.output("cls").size(), 1u);
  EXPECT_NEAR(runtime.output("cls")[0], cls[0], 1e-6);
}

TEST_F(MobileRuntime, ArenaIsSmallerThanEveryValueApart) {
  uint64_t total = 0;
  for (const ValueDesc& v : a_.values) total += v.size();
  const Runtime runtime(a_, 2);
  EXPECT_LT(runtime.arena_floats(), static_cast<int64_t>(total) * 2);
  EXPECT_GE(runtime.arena_floats(), 2 * (80 * 4 * 2));  // up and side live together at 2 images
}

TEST_F(MobileRuntime, InconsistentArtifactsAreRefusedNamingTheStep) {
  const auto expect_invalid = [](Artifact a, const std::string& needle) {
    try {
      validate(a);
      ADD_FAILURE() << "accepted; expected a message with '" << needle << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Artifact bad = a_;
  bad.steps[2].weight.count -= 1;
  expect_invalid(bad, "step 'pw'");
  bad = a_;
  std::swap(bad.steps[0], bad.steps[1]);  // dw before the stem that writes its input
  expect_invalid(bad, "step 'dw'");
  bad = a_;
  bad.steps[0].conv.ho = 5;
  expect_invalid(bad, "step 'stem'");
  bad = a_;
  bad.steps[5].inputs[1] = a_.outputs.at("seg");  // add reading a later value
  expect_invalid(bad, "step 'skip'");
  EXPECT_THROW(Runtime(a_, 0), std::invalid_argument);
}

TEST_F(MobileRuntime, ArtifactFileRoundTrips) {
  const fs::path path =
      fs::temp_directory_path() /
      ("emtm_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".emtm");
  write_artifact(a_, path);
  const Artifact back = read_artifact(path);
  fs::remove(path);
  EXPECT_EQ(back.weights, a_.weights);
  ASSERT_EQ(back.steps.size(), a_.steps.size());
  for (size_t s = 0; s < a_.steps.size(); ++s) {
    EXPECT_EQ(back.steps[s].name, a_.steps[s].name);
    EXPECT_EQ(back.steps[s].kind, a_.steps[s].kind);
    EXPECT_EQ(back.steps[s].conv.pad_right, a_.steps[s].conv.pad_right);
    EXPECT_EQ(back.steps[s].conv.groups, a_.steps[s].conv.groups);
    EXPECT_EQ(back.steps[s].bias.count, a_.steps[s].bias.count);
  }
  EXPECT_EQ(back.objective[0].pos_weight, 1.5);
  EXPECT_EQ(back.metadata, a_.metadata);
  EXPECT_EQ(back.targets[1].width, 10u);
}

// A file damaged anywhere is either refused with a message or, when the damage leaves a valid
// model (a changed weight, a renamed value), runs like any other: never a crash or a read
// outside the arena (the sanitizer build checks the latter).
TEST_F(MobileRuntime, DamagedFilesAreRefusedOrRunSafely) {
  const fs::path path =
      fs::temp_directory_path() /
      ("emtm_damaged_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
       ".emtm");
  write_artifact(a_, path);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::mt19937 rng(9);
  // Damage in the header and step table, where sizes and indices live, more often than in the
  // weights at the end.
  const size_t header = bytes.size() - a_.weights.size() * sizeof(float);
  int refused = 0, ran = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string damaged = bytes;
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
      const size_t at = rng() % 4 ? rng() % header : rng() % damaged.size();
      damaged[at] = static_cast<char>(rng() % 2 ? rng() % 256 : damaged[at] ^ (1 << (rng() % 8)));
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
    try {
      Runtime runtime(read_artifact(path), 1);
      std::vector<float> image(runtime.artifact().values[runtime.artifact().image].size(), 0.5f);
      runtime.run(image, 1);
      ++ran;
    } catch (const std::runtime_error&) {
      ++refused;
    } catch (const std::invalid_argument&) {
      ++refused;
    } catch (const std::bad_alloc&) {
      ++refused;  // a valid but enormous model
    }
  }
  fs::remove(path);
  EXPECT_GT(refused, 100);
  EXPECT_GT(ran, 10);
}

}  // namespace
