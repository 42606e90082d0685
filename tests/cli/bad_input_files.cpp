#include "tests/cli/bad_input_files.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/dsl/parser.h"
#include "tests/cli/bounded_run.h"
#include "tests/engine/predict_inputs.h"
#include "tests/engine/tiny_graph.h"

namespace emt::test {
namespace {

namespace fs = std::filesystem;

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

void make_fifo(const fs::path& path) {
  if (::mkfifo(path.c_str(), 0644) != 0) throw std::runtime_error("mkfifo " + path.string());
}

// ---- graph files ----------------------------------------------------------------------------

constexpr const char* kGraphHead = R"(
[graph]
name = "g"
inputs = { image = [1, 8, 8] }
outputs = { cls = "r" }
)";

void write_graphs(const fs::path& dir) {
  const std::string tiny(kTinyGraph.substr(1));
  write_bytes(dir / "tiny.toml", tiny);
  write_bytes(dir / "empty.toml", "");
  write_bytes(dir / "garbage.toml", random_bytes(3000, 1));
  fs::create_directories(dir / "adir.toml");
  make_fifo(dir / "fifo.toml");
  fs::create_symlink("loop_b.toml", dir / "loop_a.toml");
  fs::create_symlink("loop_a.toml", dir / "loop_b.toml");
  write_bytes(dir / "bom.toml", "\xEF\xBB\xBF" + tiny);
  std::string crlf;
  for (char c : tiny) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  write_bytes(dir / "crlf.toml", crlf);
  write_bytes(dir / "self_block.toml", "[block.loop]\nbody = [ { use = \"loop\" } ]\n" +
                                           std::string(kGraphHead) +
                                           "nodes = [ { use = \"loop\", in = \"image\" }, "
                                           "{ op = \"relu\", name = \"r\" } ]\n");
  write_bytes(dir / "mutual_blocks.toml",
              "[block.a]\nbody = [ { use = \"b\" } ]\n[block.b]\nbody = [ { use = \"a\" } ]\n" +
                  std::string(kGraphHead) +
                  "nodes = [ { use = \"a\", in = \"image\" }, { op = \"relu\", name = \"r\" } ]\n");
  // 40 blocks, each using the previous one twice: 2^40 relus.
  std::string doubling = "[block.b0]\nbody = [ { op = \"relu\", name = \"r\" } ]\n";
  for (int i = 1; i <= 40; ++i) {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on one long concatenation.
    const std::string prev = "\"b" + std::to_string(i - 1) + "\"";
    doubling.append("[block.b").append(std::to_string(i)).append("]\nbody = [ { use = ");
    doubling.append(prev).append(", name = \"x\" }, { use = ").append(prev);
    doubling.append(", name = \"y\" } ]\n");
  }
  write_bytes(
      dir / "doubling.toml",
      doubling + kGraphHead +
          "nodes = [ { use = \"b40\", in = \"image\" }, { op = \"relu\", name = \"r\" } ]\n");
  constexpr int kChain = 200000;
  std::string chain =
      "[graph]\nname = \"chain\"\ninputs = { image = [1, 4, 4] }\n"
      "outputs = { cls = \"r" +
      std::to_string(kChain - 1) +
      "\" }\nnodes = [\n"
      "  { op = \"relu\", name = \"r0\", in = \"image\" },\n";
  for (int i = 1; i < kChain; ++i)
    chain += "  { op = \"relu\", name = \"r" + std::to_string(i) + "\" },\n";
  write_bytes(dir / "chain.toml", chain + "]\n");
  constexpr int kDepth = 5000;
  write_bytes(dir / "deep_arrays.toml",
              "x = " + std::string(kDepth, '[') + std::string(kDepth, ']') + "\n");
  std::string tables = "x = ";
  for (int i = 0; i < kDepth; ++i) tables += "{ a = ";
  write_bytes(dir / "deep_tables.toml", tables + "1" + std::string(kDepth, '}') + "\n");
  // A 1024x1024 image through a 1x1 conv to 2^20 channels: 2^40 output elements.
  write_bytes(dir / "conv_2e40.toml",
              "[graph]\nname = \"big\"\ninputs = { image = [1, 1024, 1024] }\n"
              "outputs = { cls = \"c\" }\nnodes = [ { op = \"conv2d\", name = \"c\", "
              "in = \"image\", out = 1048576, kernel = 1 } ]\n");
  write_bytes(dir / "unterminated.toml", std::string(kGraphHead) + "nodes = [ { op = \"relu ]\n");
  write_bytes(dir / "unknown_op.toml", std::string(kGraphHead) +
                                           "nodes = [ { op = \"softmax\", name = \"r\", "
                                           "in = \"image\" } ]\n");
  write_bytes(
      dir / "dangling_input.toml",
      std::string(kGraphHead) + "nodes = [ { op = \"relu\", name = \"r\", in = \"nope\" } ]\n");
  write_bytes(dir / "include_missing.toml", "include = [\"missing_lib.toml\"]\n" + tiny);
}

// ---- weights --------------------------------------------------------------------------------

// The safetensors file cut into its header (JSON) and data section.
struct RawSafetensors {
  nlohmann::json header;
  std::string data;

  explicit RawSafetensors(const std::string& bytes) {
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), sizeof n);
    header = nlohmann::json::parse(bytes.substr(8, n));
    data = bytes.substr(8 + n);
  }
  std::string bytes() const {
    const std::string text = header.dump();
    const uint64_t n = text.size();
    return std::string(reinterpret_cast<const char*>(&n), sizeof n) + text + data;
  }
};

void write_weights(const fs::path& dir) {
  const GraphFile file = parse_graph_file(dir / "tiny.toml", kSmallData);
  write_predict_weights(file, dir / "w.safetensors", 32);
  const std::string good = read_text(dir / "w.safetensors");
  const auto variant = [&](const std::string& name, const std::function<void(RawSafetensors&)>& f) {
    RawSafetensors raw(good);
    f(raw);
    write_bytes(dir / name, raw.bytes());
  };
  write_bytes(dir / "w_empty.safetensors", "");
  write_bytes(dir / "w_garbage.safetensors", random_bytes(5000, 2));
  std::string long_header = good.substr(0, 100);
  const uint64_t claimed = 1'000'000;
  std::memcpy(long_header.data(), &claimed, sizeof claimed);
  write_bytes(dir / "w_header_too_long.safetensors", long_header);
  write_bytes(dir / "w_truncated.safetensors", good.substr(0, good.size() - 1000));
  variant("w_offsets.safetensors", [](RawSafetensors& w) {
    w.header["c1.weight"]["data_offsets"] = {0, 1'000'000'000};
  });
  variant("w_f64.safetensors", [](RawSafetensors& w) { w.header["c1.weight"]["dtype"] = "F64"; });
  variant("w_i32.safetensors", [](RawSafetensors& w) { w.header["c1.weight"]["dtype"] = "I32"; });
  // The same 72 values, so only the shape is wrong for the graph's [8,1,3,3].
  variant("w_shape.safetensors", [](RawSafetensors& w) {
    w.header["c1.weight"]["shape"] = {8, 9, 1, 1};
  });
  variant("w_missing.safetensors", [](RawSafetensors& w) { w.header.erase("bn1.gamma"); });
  const auto first_value = [](const std::string& name, float v) {
    return [name, v](RawSafetensors& w) {
      const size_t at = w.header[name]["data_offsets"][0].get<size_t>();
      std::memcpy(w.data.data() + at, &v, sizeof v);
    };
  };
  variant("w_nan.safetensors", first_value("c1.weight", std::nanf("")));
  variant("w_inf.safetensors", first_value("c2.weight", INFINITY));
  make_fifo(dir / "w_fifo.safetensors");
}

// ---- images, masks, manifests ----------------------------------------------------------------

uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string big_endian(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return big_endian(static_cast<uint32_t>(data.size())) + type + data +
         big_endian(crc32(type + data));
}

// A PNG's signature and IHDR for a 16-bit RGBA image of w x h, and no pixel data: the header
// is all a reader may look at before it decides to decode.
std::string png_header_only(uint32_t w, uint32_t h) {
  const std::string ihdr = big_endian(w) + big_endian(h) + std::string("\x10\x06\0\0\0", 5);
  return "\x89PNG\r\n\x1a\n" + png_chunk("IHDR", ihdr) + png_chunk("IEND", "");
}

void write_images(const fs::path& dir) {
  std::mt19937 rng(3);
  write_noise_images(dir, {{"img/a.png", {50, 40}}, {"img/b.png", {30, 30}}}, rng);
  write_noise_images(dir, {{"bombs/a.png", {50, 40}}, {"bombs/b.png", {30, 30}}}, rng);
  // Strips that pad to 40- and 22.5-gigapixel squares, and 7.2 GB of 16-bit RGBA.
  cv::imwrite((dir / "strip_200000x1.png").string(), cv::Mat::zeros(1, 200000, CV_8U));
  cv::imwrite((dir / "strip_1x150000.png").string(), cv::Mat::zeros(150000, 1, CV_8U));
  write_bytes(dir / "rgba16_30000.png", png_header_only(30000, 30000));
  for (const char* name : {"strip_200000x1.png", "strip_1x150000.png", "rgba16_30000.png"})
    fs::copy_file(dir / name, dir / "bombs" / name);
  write_bytes(dir / "bombs/empty.png", "");
  write_bytes(dir / "bombs/garbage.png", random_bytes(2000, 4));
  const std::string png = read_text(dir / "img/a.png");
  write_bytes(dir / "truncated.png", png.substr(0, png.size() / 2));
  make_fifo(dir / "fifo.png");

  write_noise_images(dir, {{"data/a.png", {50, 40}}, {"data/b.png", {30, 30}}}, rng);
  cv::Mat mask = cv::Mat::zeros(40, 50, CV_8U);
  mask(cv::Rect(10, 10, 20, 15)) = 255;
  cv::imwrite((dir / "data/a_mask.png").string(), mask);
  cv::imwrite((dir / "data/b_mask.png").string(), cv::Mat::zeros(30, 30, CV_8U));
  mask.setTo(128, mask);  // a lesion drawn with 128, not 255
  cv::imwrite((dir / "data/grey_mask.png").string(), mask);
  fs::create_directories(dir / "empty_folder");

  const std::string head = "image,label,mask\n", b = "data/b.png,0,data/b_mask.png\n";
  write_bytes(dir / "grey_mask.csv", head + "data/a.png,1,data/grey_mask.png\n" + b);
  write_bytes(dir / "bad_label.csv", head + "data/a.png,7,data/a_mask.png\n" + b);
  write_bytes(dir / "few_fields.csv", head + "data/a.png,1\n" + b);
  write_bytes(dir / "bad_header.csv", "img,lab\ndata/a.png,1\n");
  write_bytes(dir / "missing_image.csv", head + "data/nope.png,1,data/a_mask.png\n" + b);
  write_bytes(dir / "unterminated_quote.csv", head + "\"data/a.png,1,data/a_mask.png\n");
  write_bytes(dir / "empty.csv", "");
  write_bytes(dir / "header_only.csv", head);
  write_bytes(dir / "bom_crlf.csv",
              "\xEF\xBB\xBFimage,label,mask\r\n"
              "data/a.png,1,data/a_mask.png\r\n"
              "data/b.png,0,data/b_mask.png\r\n");
  make_fifo(dir / "fifo.csv");
}

// ---- models -----------------------------------------------------------------------------------

void run_or_throw(const std::vector<std::string>& argv, const fs::path& log) {
  const BoundedRun run = run_bounded(argv, {"OMP_WAIT_POLICY=passive"}, log);
  if (!WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0)
    throw std::runtime_error(argv[0] + " failed: " + run.output);
}

void write_models(const fs::path& dir, const std::string& engine, const std::string& graph2mobile) {
  const std::string tiny = (dir / "tiny.toml").string(), w = (dir / "w.safetensors").string();
  run_or_throw({engine, "export-onnx", tiny, "--weights", w, "-o", (dir / "m.onnx").string()},
               dir / "export.log");
  run_or_throw({graph2mobile, tiny, "--weights", w, "-o", (dir / "m.emtm").string()},
               dir / "graph2mobile.log");
  const std::string onnx = read_text(dir / "m.onnx"), emtm = read_text(dir / "m.emtm");
  write_bytes(dir / "truncated.onnx", onnx.substr(0, 1000));
  write_bytes(dir / "truncated.emtm", emtm.substr(0, 2000));
  // A FlatBuffers root offset far past the 12 bytes there are, behind the TFL3 identifier.
  write_bytes(dir / "truncated.tflite", std::string("\x00\x10\x00\x00TFL3\x0c\x00\x00\x00", 12));
  write_bytes(dir / "empty.bin", "");
  write_bytes(dir / "garbage.bin", random_bytes(4000, 5));
  make_fifo(dir / "fifo.bin");
}

}  // namespace

void write_bad_inputs(const fs::path& dir, const std::string& engine,
                      const std::string& graph2mobile) {
  write_graphs(dir);
  write_weights(dir);
  write_images(dir);
  write_models(dir, engine, graph2mobile);
}

}  // namespace emt::test
