// Every reader whose sizes come from the file allocates at most a stated multiple of the file's
// size (README, "Limits"), valid or hostile: measured here by counting operator new
// (allocation_meter.h) while each reader runs, on real files and on files built to make a
// reader allocate more than it reads (shared tables, empty messages, tiny rows).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/data/readers.h"
#include "engine/import/tflite.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/import.h"
#include "mobile/artifact.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/memory/allocation_meter.h"
#include "tests/mobile/model_builder.h"
#include "tests/skip_or_fail.h"

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

fs::path shared_dir() {
  const char* source = std::getenv("EMT_SOURCE_DIR");
  return fs::path(source ? source : ".") / ".." / "shared";
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Asserts the reader's peak against factor x file size + slack, and prints the measured ratio
// so the README's figures can be read off the test log.
void expect_bounded(const char* what, const fs::path& file, double factor, uint64_t slack,
                    const std::function<void()>& read) {
  const uint64_t size = fs::file_size(file);
  const uint64_t peak = emt::test::peak_allocated_during(read);
  std::printf("%-52s %10llu bytes, peak %11llu = %6.2fx the file\n", what,
              static_cast<unsigned long long>(size), static_cast<unsigned long long>(peak),
              static_cast<double>(peak) / static_cast<double>(size));
  EXPECT_LE(static_cast<double>(peak), factor * static_cast<double>(size) + slack)
      << what << ": " << peak << " bytes allocated for a " << size << "-byte file";
}

class ReaderMemoryTest : public emt::test::TempDirTest {};

std::string safetensors_bytes(const std::string& header) {
  std::string bytes(8, '\0');
  const uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(length >> (8 * i));
  return bytes + header;
}

TEST_F(ReaderMemoryTest, Safetensors) {
  emt::SafetensorsFile weights;
  for (int i = 0; i < 8; ++i)
    weights.tensors.push_back({"t" + std::to_string(i), {256, 512}, std::vector<float>(256 * 512)});
  const fs::path valid = dir_ / "valid.safetensors";
  emt::write_safetensors(valid, weights);
  expect_bounded("safetensors, 8 tensors of 512 KB", valid, 2, kMiB,
                 [&] { emt::read_safetensors(valid); });

  // JSON's smallest values, each of which nlohmann's DOM holds in a node of its own.
  std::string empties = R"({"a":[)";
  for (int i = 0; i < 300000; ++i) empties += i ? ",{}" : "{}";
  const fs::path objects = dir_ / "empty_objects.safetensors";
  write_bytes(objects, safetensors_bytes(empties + "]}"));
  expect_bounded("safetensors, header of 300k empty JSON objects", objects, 24, kMiB,
                 [&] { emt::read_safetensors(objects); });
  try {
    emt::read_safetensors(objects);
    ADD_FAILURE() << "a header of empty objects was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("header has an array outside a tensor's entry"),
              std::string::npos)
        << e.what();
  }

  std::string zeros = R"({"a":[)";
  for (int i = 0; i < 500000; ++i) zeros += i ? ",0" : "0";
  const fs::path numbers = dir_ / "numbers.safetensors";
  write_bytes(numbers, safetensors_bytes(zeros + "]}"));
  expect_bounded("safetensors, header of 500k numbers", numbers, 24, kMiB,
                 [&] { emt::read_safetensors(numbers); });

  std::string entries = "{";
  for (int i = 0; i < 50000; ++i) {
    if (i) entries += ',';
    entries += '"';
    entries += std::to_string(i);
    entries += R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  }
  const fs::path tensors = dir_ / "empty_tensors.safetensors";
  write_bytes(tensors, safetensors_bytes(entries + "}"));
  expect_bounded("safetensors, 50k empty tensors", tensors, 24, kMiB,
                 [&] { emt::read_safetensors(tensors); });
}

// A TFLite file (FlatBuffers, little-endian) whose subgraph lists `tensors` tensors that all
// point at one tensor table with a `dims`-long shape: 4 bytes of file per tensor, each asking
// for a copy of the whole shape.
std::string tflite_sharing_one_tensor(uint32_t tensors, uint32_t dims) {
  std::string b;
  const auto u16 = [&](uint16_t v) { b.append(reinterpret_cast<const char*>(&v), 2); };
  const auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  // An offset stored at the current position, pointing at absolute position `to`.
  const auto offset_to = [&](uint64_t to) { u32(static_cast<uint32_t>(to - b.size())); };
  const uint64_t tensor_vtable = 80 + 4 * uint64_t{tensors};
  offset_to(24);  // the root: the Model table
  b += "TFL3";
  // Model vtable at 8 (fields 2 subgraphs and 4 buffers), padded to 24; the table at 24.
  u16(14), u16(12), u16(0), u16(0), u16(4), u16(0), u16(8), u16(0);
  u32(24 - 8), offset_to(36), offset_to(44);
  u32(1), offset_to(68);           // subgraphs vector at 36
  u32(1), offset_to(56);           // buffers vector at 44
  u16(4), u16(4);                  // Buffer vtable at 52 (no fields)
  u32(56 - 52);                    // Buffer table at 56
  u16(6), u16(8), u16(4), u16(0);  // SubGraph vtable at 60 (field 0: tensors)
  u32(68 - 60), offset_to(76);     // SubGraph table at 68
  u32(tensors);                    // tensors vector at 76
  for (uint32_t i = 0; i < tensors; ++i) offset_to(tensor_vtable + 8);
  u16(6), u16(8), u16(4), u16(0);         // Tensor vtable (field 0: shape)
  u32(8), offset_to(tensor_vtable + 16);  // the one Tensor table
  u32(dims);
  for (uint32_t i = 0; i < dims; ++i) u32(1);
  return b;
}

TEST_F(ReaderMemoryTest, Tflite) {
  const fs::path model = shared_dir() / "models" / "mobilenet_v1_0.25_128_quant.tflite";
  if (!fs::exists(model)) EMT_SKIP_MISSING(model << " is absent");
  expect_bounded("tflite, MobileNetV1 0.25 read + convolutions", model, 8, kMiB, [&] {
    const emt::TfliteModel m = emt::read_tflite(model);
    emt::tflite_convolutions(m, model.string());
  });

  const fs::path shared = dir_ / "shared_tables.tflite";
  write_bytes(shared, tflite_sharing_one_tensor(2000, 50000));
  expect_bounded("tflite, 2000 tensors sharing a 50k-dim shape", shared, 8, kMiB,
                 [&] { emt::read_tflite(shared); });
  try {
    emt::read_tflite(shared);
    ADD_FAILURE() << "the shared tensor table was copied 2000 times";
  } catch (const emt::TfliteError& e) {
    EXPECT_NE(std::string(e.what()).find("more than twice its"), std::string::npos) << e.what();
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(ReaderMemoryTest, Onnx) {
  const fs::path reference = shared_dir() / "reference" / "emtnet_ref.onnx";
  if (!fs::exists(reference)) EMT_SKIP_MISSING(reference << " is absent");
  expect_bounded("onnx, the reference EMT-Net (import + compile)", reference, 16, 16 * kMiB,
                 [&] { emt::import_onnx_bytes(read_text(reference)); });

  onnx::ModelProto empty_nodes;
  for (int i = 0; i < 200000; ++i) empty_nodes.mutable_graph()->add_node();
  const fs::path nodes = dir_ / "empty_nodes.onnx";
  write_bytes(nodes, empty_nodes.SerializeAsString());
  expect_bounded("onnx, 200k empty nodes", nodes, 16, 16 * kMiB,
                 [&] { emt::import_onnx_bytes(read_text(nodes)); });
  try {
    emt::import_onnx_bytes(read_text(nodes));
    ADD_FAILURE() << "200k empty nodes were parsed";
  } catch (const emt::OnnxFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("times the file"), std::string::npos) << e.what();
  }
}

TEST_F(ReaderMemoryTest, MobileModel) {
  emt::mobile::test::ModelBuilder builder("memory", 7);
  const uint32_t image = builder.value("image", 64, 8, 8);
  const uint32_t out = builder.value("out", 256, 8, 8);
  emt::mobile::ConvDesc c;
  c.cin = 64, c.cout = 256, c.h = c.w = c.ho = c.wo = 8, c.kernel = 3;
  c.pad_top = c.pad_left = c.pad_bottom = c.pad_right = 1;
  builder.conv(emt::mobile::StepKind::kConv2d, "conv", image, out, c, true);
  emt::mobile::Artifact& a = builder.artifact();
  a.image = image;
  a.outputs["out"] = out;
  for (auto storage : {emt::mobile::WeightStorage::kF32, emt::mobile::WeightStorage::kF16}) {
    a.weight_storage = storage;
    const fs::path file = dir_ / "model.emtm";
    emt::mobile::write_artifact(a, file);
    expect_bounded(storage == emt::mobile::WeightStorage::kF32 ? "emtm, 147k f32 weights"
                                                               : "emtm, 147k f16 weights",
                   file, 4, kMiB, [&] { emt::mobile::read_artifact(file); });
  }
  for (int i = 0; i < 100000; ++i) a.metadata[std::to_string(i)] = "";
  const fs::path tags = dir_ / "metadata.emtm";
  emt::mobile::write_artifact(a, tags);
  expect_bounded("emtm, 100k short metadata entries", tags, 16, kMiB,
                 [&] { emt::mobile::read_artifact(tags); });
}

TEST_F(ReaderMemoryTest, CsvManifest) {
  std::string rows = "image,label,mask\n";
  for (int i = 0; i < 100000; ++i) {
    rows += 'm';
    rows += std::to_string(i);
    rows += ",1,\n";
  }
  const fs::path manifest = dir_ / "rows.csv";
  write_bytes(manifest, rows);
  // The rows become resolved paths (the manifest's folder + the field), so the bound is per row.
  const uint64_t per_row = 2048, row_slack = 100000 * per_row;
  emt::ReadReport report;
  expect_bounded("csv, 100k rows naming missing files", manifest, 4, row_slack,
                 [&] { emt::read_csv_manifest(manifest, {}, report); });
  expect_bounded("csv, the same rows listed for predict", manifest, 4, row_slack,
                 [&] { emt::list_images(manifest); });
}

}  // namespace
