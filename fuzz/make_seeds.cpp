// Writes the seed corpora the formats' own writers make: make_seeds <dir> [onnx node tests]
// fills <dir>/{safetensors,emtm,image,csv}/ with small valid files (and a few near misses), and
// <dir>/onnx/ with ONNX's node test models of the ops the importer knows, their weight inputs
// made initializers (as exporters store them) from the test's input data. tools/fuzz.sh adds the
// graph files and, when ../shared is there, a TFLite model.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/model_reader.h"
#include "mobile/artifact.h"
#include "tests/mobile/model_builder.h"

namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void safetensors_seeds(const fs::path& dir) {
  emt::SafetensorsFile one;
  one.tensors = {{"conv.weight", {2, 1, 3, 3}, std::vector<float>(18, 0.25f)}};
  emt::write_safetensors(dir / "one.safetensors", one);
  emt::SafetensorsFile several;
  several.metadata = {{"format", "pt"}, {"step", "7"}};
  several.tensors = {{"a", {3}, {1.f, -2.f, 3.5f}},
                     {"b.bias", {1}, {0.f}},
                     {"empty", {0, 4}, {}},
                     {"scalar", {}, {42.f}}};
  emt::write_safetensors(dir / "several.safetensors", several);
  emt::write_safetensors(dir / "none.safetensors", {});
}

// image [1, 6, 6] -> conv 3x3 stride 2 (relu) -> [4, 3, 3] -> transposed back to [1, 6, 6]
// (seg); global pool -> dense -> sigmoid (cls): every step kind the format has but relu6.
emt::mobile::Artifact small_model() {
  using namespace emt::mobile;
  test::ModelBuilder m("seed", 3);
  const uint32_t image = m.value("image", 1, 6, 6), conv = m.value("conv", 4, 3, 3),
                 up = m.value("up", 1, 6, 6), sum = m.value("sum", 1, 6, 6),
                 seg = m.value("seg", 1, 6, 6), gap = m.value("gap", 4, 1, 1),
                 logit = m.value("logit", 1, 1, 1), relu = m.value("relu", 1, 1, 1),
                 cls = m.value("cls", 1, 1, 1);
  m.conv(StepKind::kConv2d, "conv", image, conv,
         {1, 6, 6, 4, 3, 3, 3, 2, 1, 1, 1, 0, 0, Activation::kRelu}, true);
  m.conv(StepKind::kConvTranspose2d, "up", conv, up,
         {1, 6, 6, 4, 3, 3, 3, 2, 1, 1, 1, 0, 0, Activation::kNone}, true);
  m.step(StepKind::kAdd, "sum", {up, image}, sum);
  m.step(StepKind::kSigmoid, "seg", {sum}, seg);
  m.step(StepKind::kGlobalAvgPool, "gap", {conv}, gap);
  m.dense("logit", gap, logit);
  m.step(StepKind::kRelu6, "relu", {logit}, relu);
  m.step(StepKind::kSigmoid, "cls", {relu}, cls);
  Artifact a = std::move(m.artifact());
  a.image = image;
  a.outputs = {{"cls", cls}, {"seg", seg}};
  a.targets = {{"label", 1, 1, 1}, {"mask", 1, 6, 6}};
  a.objective = {{emt::LossKind::kWeightedBce, logit, 0, 3.0, 1.5, 1.0},
                 {emt::LossKind::kDice, seg, 1, 1.0, 1.0, 1.0}};
  a.metadata = {{"input_size", "6"}, {"threshold", "0.5"}};
  return a;
}

void emtm_seeds(const fs::path& dir) {
  emt::mobile::Artifact a = small_model();
  emt::mobile::write_artifact(a, dir / "f32.emtm");
  a.weight_storage = emt::mobile::WeightStorage::kF16;
  emt::mobile::write_artifact(a, dir / "f16.emtm");
}

void image_seeds(const fs::path& dir) {
  cv::Mat grey(5, 7, CV_8UC1), colour(4, 3, CV_8UC3), rgba(3, 4, CV_8UC4), deep(3, 5, CV_16UC1);
  cv::randu(grey, 0, 256);
  cv::randu(colour, 0, 256);
  cv::randu(rgba, 0, 256);
  cv::randu(deep, 0, 65536);
  const std::pair<const char*, const cv::Mat*> files[] = {
      {"grey.png", &grey}, {"colour.png", &colour}, {"rgba.png", &rgba}, {"deep.png", &deep},
      {"grey.jpg", &grey}, {"colour.jpg", &colour}, {"grey.bmp", &grey}, {"colour.bmp", &colour}};
  for (const auto& [name, image] : files)
    if (!cv::imwrite((dir / name).string(), *image))
      throw std::runtime_error(std::string("cannot write ") + name);
}

void csv_seeds(const fs::path& dir) {
  // The fuzzer's folder holds a.png, a_mask.png and small_mask.png (csv_fuzz.cpp).
  write_text(dir / "plain.csv", "image,label,mask\na.png,benign,a_mask.png\n");
  write_text(dir / "group.csv",
             "group,mask,label,image\np1,a_mask.png,1,a.png\np1,small_mask.png,0,a.png\n"
             "p2,missing.png,normal,b.png\n");
  write_text(dir / "quoted.csv",
             "\xEF\xBB\xBFimage,label,mask\r\n\"a.png\",\"malignant\",\" a_mask.png\"\r\n"
             "\"x,\"\"y\"\"\nz\",0,a_mask.png\r\n,,\r\n\"open\n");
}

// The model with inputs 1.. (weights, in the node tests of the importer's ops) turned into
// initializers holding the test's input_<k>.pb.
std::string with_initializers(const fs::path& test) {
  onnx::ModelProto model;
  if (!model.ParseFromString(emt::read_file(test / "model.onnx")))
    throw std::runtime_error(test.string() + ": model.onnx does not parse");
  onnx::GraphProto& graph = *model.mutable_graph();
  for (int k = graph.input_size() - 1; k >= 1; --k) {
    onnx::TensorProto& init = *graph.add_initializer();
    const fs::path data = test / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb");
    if (!init.ParseFromString(emt::read_file(data)))
      throw std::runtime_error(data.string() + " does not parse");
    init.set_name(graph.input(k).name());
    graph.mutable_input()->RemoveLast();
  }
  return model.SerializeAsString();
}

void onnx_seeds(const fs::path& node_tests, const fs::path& dir) {
  const char* ops[] = {
      "conv",   "relu",    "gemm",    "add",     "batchnorm", "clip",      "sigmoid",
      "matmul", "flatten", "reshape", "dropout", "identity",  "transpose", "globalaveragepool"};
  for (const fs::directory_entry& e : fs::directory_iterator(node_tests)) {
    const std::string name = e.path().filename().string();
    bool wanted = false;
    for (const char* op : ops) wanted = wanted || name.rfind(std::string("test_") + op, 0) == 0;
    if (!wanted || !fs::exists(e.path() / "model.onnx")) continue;
    emt::write_file_atomic(dir / (name + ".onnx"), with_initializers(e.path()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: make_seeds DIR [ONNX_NODE_TESTS_DIR]\n");
    return 2;
  }
  try {
    const fs::path root = argv[1];
    for (const char* target : {"safetensors", "emtm", "image", "csv", "onnx"})
      fs::create_directories(root / target);
    safetensors_seeds(root / "safetensors");
    emtm_seeds(root / "emtm");
    image_seeds(root / "image");
    csv_seeds(root / "csv");
    if (argc == 3) onnx_seeds(argv[2], root / "onnx");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
