// Batch-norm calibration of imported weights: the eval function must not move, the running
// statistics must be the measured input moments, training-mode batch norms must then reproduce
// the eval function, and batch norms the weights file did not set must stay as they were.
#include "engine/import/bn_calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/import/init_weights.h"
#include "engine/import/tflite.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/threading.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/skip_or_fail.h"

namespace emt {
namespace {

// An imported backbone (c1, bn1, c2, bn2: conv -> batch_norm -> relu6, odd sizes, stride 2, a
// non-default eps) and a randomly initialised head (d1, dbn) that calibration must not touch.
constexpr std::string_view kNodes = R"toml(
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 5, kernel = 3, bias = false },
  { op = "batch_norm", name = "bn1" },
  { op = "relu6", name = "r1" },
  { op = "conv2d", name = "c2", out = 7, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn2", eps = 0.001 },
  { op = "relu6", name = "r2" },
  { op = "conv2d", name = "d1", out = 3, kernel = 1, bias = false },
  { op = "batch_norm", name = "dbn" },
  { op = "relu", name = "head" },
]
)toml";

constexpr std::string_view kHeader = R"toml(
[graph]
name = "bn_calibration"
inputs = { image = [3, 9, 9] }
)toml";

// The probe exposes the batch norms' inputs so that the test can measure them itself; the other
// variant leaves them to fusion, so its eval executors run folded batch norms.
constexpr std::string_view kProbeOutputs =
    R"(outputs = { feat = "r2", head = "head", c1 = "c1", c2 = "c2" })";
constexpr std::string_view kFusableOutputs = R"(outputs = { feat = "r2", head = "head" })";

constexpr int kImages = 12;
constexpr int64_t kCalibrationBatch = 5;  // 5 + 5 + 2: uneven batches must merge exactly

const std::vector<std::string> kImportedBatchNorms = {"bn1", "bn2"};
const std::vector<std::string> kBatchNormTensors = {"gamma", "beta", "running_mean", "running_var"};

std::vector<float> uniform(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Arbitrary batch-norm tensors, far from the statistics the inputs will have.
std::vector<float> random_bn_tensor(std::mt19937& rng, const std::string& local, size_t n) {
  if (local == "gamma") {
    std::vector<float> g = uniform(rng, n, 0.5f, 2.0f);
    g[0] = -g[0];  // a negative scale must keep its sign
    return g;
  }
  if (local == "running_var") return uniform(rng, n, 0.2f, 3.0f);
  return uniform(rng, n, -1.0f, 1.0f);
}

// What `engine import-tflite` would write for the backbone: its conv weights and batch norms.
SafetensorsFile imported_backbone(const ParamStore& params, std::mt19937& rng) {
  SafetensorsFile file;
  for (const std::string& name : params.names()) {
    const std::string node = name.substr(0, name.find('.'));
    const std::string local = name.substr(name.find('.') + 1);
    const size_t n = params.at(name).value.size();
    if (node == "c1" || node == "c2")
      file.tensors.push_back({name, params.at(name).spec.shape, uniform(rng, n, -0.5f, 0.5f)});
    else if (node == "bn1" || node == "bn2")
      file.tensors.push_back({name, params.at(name).spec.shape, random_bn_tensor(rng, local, n)});
  }
  return file;
}

// Off-centre by default, so that the convolutions' outputs have a mean of their own.
std::vector<Sample> random_images(std::mt19937& rng, int count = kImages, int side = 9,
                                  float lo = -0.5f, float hi = 1.5f) {
  std::vector<Sample> images(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    Sample& s = images[static_cast<size_t>(i)];
    s.id = "img" + std::to_string(i);
    s.image = uniform(rng, static_cast<size_t>(3 * side * side), lo, hi);
    s.mask.assign(static_cast<size_t>(side * side), 0.0f);
    s.label = i % 2;
  }
  return images;
}

std::vector<const Sample*> pointers(const std::vector<Sample>& samples) {
  std::vector<const Sample*> p;
  for (const Sample& s : samples) p.push_back(&s);
  return p;
}

void copy_params(const ParamStore& from, ParamStore& to) {
  for (const std::string& name : from.names()) {
    const std::vector<float>& src = from.at(name).value;
    std::copy(src.begin(), src.end(), to.at(name).value.begin());  // in place: executors hold it
  }
  to.mark_updated();
}

std::map<std::string, std::vector<float>> run(Model& model, Mode mode,
                                              const std::vector<const Sample*>& images,
                                              const std::vector<std::string>& outputs) {
  Executor& exec = model.executor(static_cast<int64_t>(images.size()), mode);
  load_batch(exec, images);
  exec.forward();
  std::map<std::string, std::vector<float>> out;
  for (const std::string& name : outputs) {
    const Tensor t = exec.value(exec.program().outputs.at(name));
    out[name].assign(t.data, t.data + t.numel());
  }
  return out;
}

// A fresh model with `params`' values, so that its batch norms' running statistics, which a
// training-mode forward moves, are not those of the model under test.
std::vector<float> training_mode_output(const GraphFile& file, Backend backend,
                                        const ParamStore& params,
                                        const std::vector<const Sample*>& images,
                                        const std::string& output) {
  Model model(file, 1, backend);
  copy_params(params, model.params());
  return run(model, Mode::kTrain, images, {output})[output];
}

// max |a - b| / max |b|.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

// Per-channel mean and biased variance of an [N,C,H,W] value, the plain way.
void naive_moments(const std::vector<float>& x, int64_t n, int64_t c, int64_t spatial,
                   std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(static_cast<size_t>(c), 0.0);
  var.assign(static_cast<size_t>(c), 0.0);
  const double count = static_cast<double>(n * spatial);
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t s = 0; s < spatial; ++s) mean[k] += x[(b * c + k) * spatial + s];
    mean[k] /= count;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t s = 0; s < spatial; ++s) {
        const double d = x[(b * c + k) * spatial + s] - mean[k];
        var[k] += d * d;
      }
    var[k] /= count;
  }
}

class BnCalibrationTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    init_threading(2);
    probe_file_ = parse_graph_file(write(
        "probe.toml", std::string(kHeader) + std::string(kProbeOutputs) + std::string(kNodes)));
    fusable_file_ = parse_graph_file(write(
        "fusable.toml", std::string(kHeader) + std::string(kFusableOutputs) + std::string(kNodes)));
  }

  // Loads the imported backbone into `model` and gives the head's batch norm arbitrary values
  // too; returns the names loaded, as load_initial_weights reports them.
  std::vector<std::string> import_into(Model& model, std::mt19937& rng) {
    const InitWeightsReport loaded =
        load_initial_weights(model.params(), imported_backbone(model.params(), rng), "test");
    for (const std::string& local : kBatchNormTensors) {
      std::vector<float>& v = model.params().at("dbn." + local).value;
      const std::vector<float> values = random_bn_tensor(rng, local, v.size());
      std::copy(values.begin(), values.end(), v.begin());
    }
    model.params().mark_updated();
    return loaded.loaded;
  }

  GraphFile probe_file_, fusable_file_;
};

TEST_F(BnCalibrationTest, KeepsEvalOutputsAndMakesTrainingModeMatchThem) {
  for (Backend backend : {Backend::kReference, Backend::kOnednn}) {
    SCOPED_TRACE(backend_name(backend));
    std::mt19937 rng(7);
    const std::vector<Sample> samples = random_images(rng);
    const std::vector<const Sample*> images = pointers(samples);

    Model probe(probe_file_, 3, backend);
    probe.set_inference_fusion(false);
    const std::vector<std::string> loaded = import_into(probe, rng);
    Model fused(fusable_file_, 3, backend);
    copy_params(probe.params(), fused.params());
    ASSERT_TRUE(fused.executor(kImages, Mode::kEval).program().fused);

    const std::vector<std::string> watched = {"feat", "head", "c1", "c2"};
    const auto before = run(probe, Mode::kEval, images, watched);
    const auto fused_before = run(fused, Mode::kEval, images, {"feat", "head"});
    EXPECT_LT(relative_error(fused_before.at("feat"), before.at("feat")), 1e-5);
    // Without calibration, batch statistics replace the file's: far from the eval function.
    const double train_error_before =
        relative_error(training_mode_output(probe_file_, backend, probe.params(), images, "feat"),
                       before.at("feat"));
    EXPECT_GT(train_error_before, 0.1);

    std::map<std::string, std::vector<float>> head_bn;
    for (const std::string& local : kBatchNormTensors)
      head_bn[local] = probe.params().at("dbn." + local).value;

    const uint64_t version = fused.params().version();
    const BnCalibrationReport report =
        calibrate_batch_norms(probe, images, loaded, kCalibrationBatch);
    EXPECT_EQ(report.calibrated, kImportedBatchNorms);
    EXPECT_EQ(report.images, kImages);
    EXPECT_EQ(report.summary(), "calibrated 2 imported batch norms over 12 images");
    EXPECT_EQ(calibrate_batch_norms(fused, images, loaded, kCalibrationBatch).calibrated,
              kImportedBatchNorms);
    // Stale folded params would compute the same function, so outputs cannot show this.
    EXPECT_GT(fused.params().version(), version) << "fused executors would not re-derive";

    // (a) The eval function is unchanged, unfused and fused (from re-derived folded params).
    const auto after = run(probe, Mode::kEval, images, watched);
    const auto fused_after = run(fused, Mode::kEval, images, {"feat", "head"});
    for (const char* out : {"feat", "head"}) {
      EXPECT_LT(relative_error(after.at(out), before.at(out)), 1e-4) << out;
      EXPECT_LT(relative_error(fused_after.at(out), before.at(out)), 1e-4) << out << " fused";
    }

    // (b) The running statistics are the batch norm inputs' moments over all images.
    const Program& program = probe.executor(kImages, Mode::kEval).program();
    const std::map<std::string, std::string> input_of = {{"bn1", "c1"}, {"bn2", "c2"}};
    for (const auto& [bn, input] : input_of) {
      const Shape& shape = program.values[program.outputs.at(input)].shape;
      std::vector<double> mean, var;
      naive_moments(before.at(input), shape[0], shape[1], shape[2] * shape[3], mean, var);
      const std::vector<float>& running_mean = probe.params().at(bn + ".running_mean").value;
      const std::vector<float>& running_var = probe.params().at(bn + ".running_var").value;
      for (size_t k = 0; k < mean.size(); ++k) {
        EXPECT_NEAR(running_mean[k], mean[k], 1e-5 * (1 + std::abs(mean[k]))) << bn << " c" << k;
        EXPECT_NEAR(running_var[k], var[k], 1e-5 * var[k]) << bn << " c" << k;
      }
    }

    // (c) Training mode, normalising by these images' batch statistics, now computes the eval
    // function.
    const double train_error_after =
        relative_error(training_mode_output(probe_file_, backend, probe.params(), images, "feat"),
                       before.at("feat"));
    EXPECT_LT(train_error_after, 1e-4) << "before calibration: " << train_error_before;

    // (d) The head's batch norm did not come from the file: untouched, bit for bit.
    for (const std::string& local : kBatchNormTensors)
      EXPECT_EQ(probe.params().at("dbn." + local).value, head_bn[local]) << local;
  }
}

// The real case: the 1.0_224 MobileNetV1 extractor imported into graphs/emtnet_pretrained.toml
// (at 32x32 to stay fast). Its 27 folded batch norms are calibrated, the decoder's are not, the
// eval outputs stay, and the training-mode backbone starts at the pretrained one.
TEST_F(BnCalibrationTest, ImportedMobileNetInEmtNetPretrained) {
  const char* shared = std::getenv("EMT_SHARED_DIR");
  const char* source = std::getenv("EMT_SOURCE_DIR");
  const std::filesystem::path root = source && *source ? source : ".";
  const std::filesystem::path tflite =
      (shared && *shared ? std::filesystem::path(shared) : root / ".." / "shared") / "models" /
      "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite";
  if (!std::filesystem::exists(tflite))
    EMT_SKIP_MISSING("no " << tflite << " (set EMT_SHARED_DIR to the folder holding models/)");
  GraphFile file =
      parse_graph_file(root / "graphs" / "emtnet_pretrained.toml", {"data.input_size=32"});
  file.graph.outputs.push_back({"backbone_out", "backbone", {}});
  Model model(file, 1);
  SafetensorsFile imported;
  import_tflite_tensors(read_tflite(tflite), tflite.string(), model, imported.tensors);
  const InitWeightsReport loaded = load_initial_weights(model.params(), imported, "extractor");

  std::mt19937 rng(2);
  // TensorFlow's MobileNet input range, (p - 128) / 128.
  const std::vector<Sample> samples = random_images(rng, 8, 32, -1.0f, 1.0f);
  const std::vector<const Sample*> images = pointers(samples);
  const std::vector<std::string> outputs = {"cls", "seg", "backbone_out"};
  const auto before = run(model, Mode::kEval, images, outputs);
  const double train_error_before = relative_error(
      training_mode_output(file, Backend::kReference, model.params(), images, "backbone_out"),
      before.at("backbone_out"));
  std::map<std::string, std::vector<float>> heads;
  for (const std::string& name : model.params().names())
    if (name.rfind("backbone.", 0) != 0) heads[name] = model.params().at(name).value;

  const BnCalibrationReport report = calibrate_batch_norms(model, images, loaded.loaded, 3);
  EXPECT_EQ(report.calibrated.size(), 27u);
  for (const std::string& bn : report.calibrated) EXPECT_EQ(bn.rfind("backbone.", 0), 0u) << bn;

  const auto after = run(model, Mode::kEval, images, outputs);
  for (const std::string& out : outputs)
    EXPECT_LT(relative_error(after.at(out), before.at(out)), 1e-4) << out;
  for (const auto& [name, value] : heads)
    EXPECT_EQ(model.params().at(name).value, value) << name << " is not imported";
  const double train_error_after = relative_error(
      training_mode_output(file, Backend::kReference, model.params(), images, "backbone_out"),
      before.at("backbone_out"));
  EXPECT_GT(train_error_before, 0.1);
  EXPECT_LT(train_error_after, 1e-3) << "before calibration: " << train_error_before;
}

TEST_F(BnCalibrationTest, NothingLoadedChangesNothing) {
  std::mt19937 rng(11);
  Model model(fusable_file_, 3);
  import_into(model, rng);
  const std::vector<NamedTensor> before = model.params().to_tensors();
  const uint64_t version = model.params().version();
  const std::vector<Sample> samples = random_images(rng);

  // Conv weights alone name no batch norm; without a batch norm to calibrate, no image is needed.
  const std::vector<std::string> conv_only = {"c1.weight", "c2.weight"};
  EXPECT_TRUE(calibrate_batch_norms(model, pointers(samples), conv_only).calibrated.empty());
  EXPECT_TRUE(calibrate_batch_norms(model, {}, {}).calibrated.empty());

  const std::vector<NamedTensor> after = model.params().to_tensors();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i].data, before[i].data) << after[i].name;
  EXPECT_EQ(model.params().version(), version);
}

TEST_F(BnCalibrationTest, OneLoadedTensorSelectsItsBatchNorm) {
  std::mt19937 rng(5);
  Model model(fusable_file_, 3);
  const std::vector<Sample> samples = random_images(rng);
  const std::vector<std::string> loaded = {"bn2.running_var"};
  EXPECT_EQ(calibrate_batch_norms(model, pointers(samples), loaded).calibrated,
            std::vector<std::string>{"bn2"});
}

// A batch norm may read the graph's input itself, a value that is no activation.
TEST_F(BnCalibrationTest, BatchNormOnTheImage) {
  const GraphFile file = parse_graph_file(write("image_bn.toml", R"toml(
[graph]
name = "image_bn"
inputs = { image = [3, 9, 9] }
outputs = { out = "act" }
nodes = [
  { op = "batch_norm", name = "bn", in = "image" },
  { op = "relu6", name = "act" },
]
)toml"));
  Model model(file, 3);
  std::mt19937 rng(9);
  const std::vector<Sample> samples = random_images(rng);
  std::vector<float> all;
  for (const Sample& s : samples) all.insert(all.end(), s.image.begin(), s.image.end());
  std::vector<double> mean, var;
  naive_moments(all, kImages, 3, 81, mean, var);
  const std::vector<std::string> loaded = {"bn.gamma"};
  EXPECT_EQ(calibrate_batch_norms(model, pointers(samples), loaded, kCalibrationBatch).calibrated,
            std::vector<std::string>{"bn"});
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(model.params().at("bn.running_mean").value[k], mean[k], 1e-5) << k;
    EXPECT_NEAR(model.params().at("bn.running_var").value[k], var[k], 1e-5 * var[k]) << k;
  }
}

TEST_F(BnCalibrationTest, NeedsImagesAndAPositiveBatch) {
  Model model(fusable_file_, 3);
  const std::vector<std::string> loaded = {"bn1.gamma"};
  EXPECT_THROW(calibrate_batch_norms(model, {}, loaded), std::invalid_argument);
  std::mt19937 rng(3);
  const std::vector<Sample> samples = random_images(rng);
  EXPECT_THROW(calibrate_batch_norms(model, pointers(samples), loaded, 0), std::invalid_argument);
}

TEST(BnCalibrationSamples, SpreadEvenlyOverTheTrainingSplit) {
  Dataset data;
  for (int i = 0; i < 10; ++i) data.samples.push_back({"s" + std::to_string(i), {}, {}, i % 2});
  data.split.train = {0, 2, 3, 5, 7, 8, 9};
  data.split.val = {1, 4};
  data.split.test = {6};
  auto ids = [](const std::vector<const Sample*>& picked) {
    std::vector<std::string> out;
    for (const Sample* s : picked) out.push_back(s->id);
    return out;
  };
  // train[i * 7 / 3] for i = 0, 1, 2: train[0], train[2], train[4].
  EXPECT_EQ(ids(bn_calibration_samples(data, 3)), (std::vector<std::string>{"s0", "s3", "s7"}));
  EXPECT_EQ(ids(bn_calibration_samples(data, 64)),
            (std::vector<std::string>{"s0", "s2", "s3", "s5", "s7", "s8", "s9"}));
  EXPECT_TRUE(bn_calibration_samples(data, 0).empty());
}

}  // namespace
}  // namespace emt
