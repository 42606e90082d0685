#include "engine/io/safetensors.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/io/atomic_file.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("emt_safetensors_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Every error must name the file and say what is wrong with it.
  void expect_read_error(const std::string& bytes, const std::string& reason) {
    const fs::path path = dir_ / "bad.safetensors";
    write_file_atomic(path, bytes);
    try {
      read_safetensors(path);
      ADD_FAILURE() << "no error for a file that should give: " << reason;
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(reason), std::string::npos) << message;
    }
  }

  std::vector<fs::path> files_in_dir() const {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path().filename());
    return files;
  }

  fs::path dir_;
};

// A file holding only the given header, followed by data_size zero bytes.
std::string file_with_header(const std::string& header, size_t data_size) {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + std::string(data_size, '\0');
}

float from_bits(uint32_t bits) { return std::bit_cast<float>(bits); }

// Compares floats by their bits, so NaN payloads and -0.0 count.
std::vector<uint32_t> bit_patterns(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  for (float v : values) bits.push_back(std::bit_cast<uint32_t>(v));
  return bits;
}

TEST_F(SafetensorsTest, RoundTripIsBitExact) {
  SafetensorsFile file;
  file.tensors.push_back({"special",
                          {2, 4},
                          {from_bits(0x7fc00001u), from_bits(0xffa00005u), -0.0f, from_bits(1u),
                           from_bits(0x807fffffu), std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::max(), 1.0f / 3.0f}});
  file.tensors.push_back({"scalar", {}, {42.5f}});
  file.tensors.push_back({"empty", {0, 3}, {}});
  file.tensors.push_back({"conv.weight", {3, 1, 1, 1}, {-1.0f, 0.5f, 2.0f}});
  const fs::path path = dir_ / "w.safetensors";
  write_safetensors(path, file);

  const SafetensorsFile back = read_safetensors(path);
  ASSERT_EQ(back.tensors.size(), file.tensors.size());
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    const NamedTensor& want = file.tensors[i];
    const NamedTensor& got = back.tensors[i];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.shape, want.shape);
    EXPECT_EQ(bit_patterns(got.data), bit_patterns(want.data)) << want.name;
  }
  ASSERT_NE(back.find("scalar"), nullptr);
  EXPECT_EQ(back.find("scalar")->data[0], 42.5f);
  EXPECT_EQ(back.find("missing"), nullptr);
}

TEST_F(SafetensorsTest, MetadataRoundTrips) {
  SafetensorsFile file;
  file.metadata = {{"format", "pt"}, {"epoch", "12"}, {"note", "quotes \" and\nnewlines"}};
  file.tensors.push_back({"w", {1}, {1.0f}});
  const fs::path path = dir_ / "m.safetensors";
  write_safetensors(path, file);
  EXPECT_EQ(read_safetensors(path).metadata, file.metadata);
}

TEST_F(SafetensorsTest, OnDiskLayoutFollowsTheFormat) {
  SafetensorsFile file;
  file.metadata = {{"format", "pt"}};
  file.tensors.push_back({"b", {2}, {1.0f, -2.0f}});
  file.tensors.push_back({"a", {1, 1}, {0.25f}});
  const fs::path path = dir_ / "layout.safetensors";
  write_safetensors(path, file);

  const std::string bytes = read_file(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 3 * sizeof(float));

  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.substr(header.rfind('}') + 1).find_first_not_of(' '), std::string::npos)
      << "the header is padded with spaces only";
  const nlohmann::json expected = {
      {"__metadata__", {{"format", "pt"}}},
      {"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
      {"a", {{"dtype", "F32"}, {"shape", {1, 1}}, {"data_offsets", {8, 12}}}},
  };
  EXPECT_EQ(nlohmann::json::parse(header), expected);

  const float want[] = {1.0f, -2.0f, 0.25f};
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, want, sizeof want), 0);
}

TEST_F(SafetensorsTest, TruncatedFilesAreRejected) {
  expect_read_error("abc", "too short for the 8-byte header length");
  expect_read_error(file_with_header("{}", 0).substr(0, 9), "exceeds the 9-byte file");

  SafetensorsFile file;
  file.tensors.push_back({"w", {4}, {1, 2, 3, 4}});
  write_safetensors(dir_ / "w.safetensors", file);
  const std::string bytes = read_file(dir_ / "w.safetensors");
  expect_read_error(bytes.substr(0, bytes.size() - 4), "out of range");
}

TEST_F(SafetensorsTest, MalformedHeadersAreRejected) {
  expect_read_error(file_with_header("{\"w\": {\"dtype\": ", 0), "header is not valid JSON");
  expect_read_error(file_with_header("[1, 2]", 0), "header must be a JSON object");
  expect_read_error(file_with_header(R"({"w": {"dtype": "F32", "shape": [1]}})", 4),
                    "tensor 'w': missing \"data_offsets\"");
  expect_read_error(
      file_with_header(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
      "non-negative integers");
  expect_read_error(file_with_header(R"({"__metadata__": {"k": 1}})", 0), "must be a string");
}

TEST_F(SafetensorsTest, WrongDtypeIsNamed) {
  expect_read_error(
      file_with_header(R"({"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})", 4),
      "tensor 'w' has dtype F16; only F32 is supported");
}

TEST_F(SafetensorsTest, BadOffsetsAreRejected) {
  expect_read_error(
      file_with_header(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}})", 8),
      "out of range of the 8-byte data section");
  expect_read_error(
      file_with_header(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}})", 8),
      "out of range");
  expect_read_error(
      file_with_header(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
      "has shape [3] but data_offsets [0,8] span 8 bytes");
  expect_read_error(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                       12),
      "data of tensor 'a' and tensor 'b' overlap");
  expect_read_error(
      file_with_header(
          R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 8], "data_offsets": [0, 8]}})",
          8),
      "has shape [4611686018427387904,8] but data_offsets [0,8] span 8 bytes");
}

TEST_F(SafetensorsTest, InvalidTensorsAreNotWritten) {
  SafetensorsFile file;
  file.tensors.push_back({"w", {2, 2}, {1, 2, 3}});
  EXPECT_THROW(write_safetensors(dir_ / "x.safetensors", file), std::invalid_argument);
  file.tensors = {{"w", {1}, {1}}, {"w", {1}, {2}}};
  EXPECT_THROW(write_safetensors(dir_ / "x.safetensors", file), std::invalid_argument);
  EXPECT_TRUE(files_in_dir().empty());
}

TEST_F(SafetensorsTest, MissingDirectoryGivesErrorAndLeavesNothing) {
  SafetensorsFile file;
  file.tensors.push_back({"w", {1}, {1}});
  const fs::path path = dir_ / "missing" / "w.safetensors";
  try {
    write_safetensors(path, file);
    ADD_FAILURE() << "writing into a missing directory succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos) << e.what();
  }
  EXPECT_TRUE(files_in_dir().empty());
}

// The rename is the last step, so its failure proves the temp file is cleaned up after it
// was fully written, and that the target is untouched.
TEST_F(SafetensorsTest, FailedRenameRemovesTempAndKeepsTarget) {
  const fs::path target = dir_ / "w.safetensors";
  fs::create_directories(target / "occupied");
  EXPECT_THROW(write_file_atomic(target, "new contents"), std::runtime_error);
  EXPECT_TRUE(fs::is_directory(target / "occupied"));
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"w.safetensors"});
}

// A write that fails half-way (a full disk, here RLIMIT_FSIZE in a forked child, which works as
// root too) names the file and why, and leaves the previous version and no temp file.
void write_past_file_size_limit(const fs::path& path) {
  constexpr rlim_t kLimit = 1000;
  std::signal(SIGXFSZ, SIG_IGN);  // then write() fails with EFBIG instead of killing the process
  const rlimit limit{kLimit, kLimit};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(2);
  try {
    write_file_atomic(path, std::string(64 * kLimit, 'n'));
  } catch (const std::runtime_error& e) {
    std::cerr << e.what() << "\n";
    _exit(0);
  }
  _exit(1);
}

TEST_F(SafetensorsTest, WriteFailingMidFileKeepsOldFile) {
  const fs::path path = dir_ / "w.safetensors";
  write_file_atomic(path, "old contents");
  EXPECT_EXIT(write_past_file_size_limit(path), ::testing::ExitedWithCode(0),
              "w.safetensors: cannot write: File too large");
  EXPECT_EQ(read_file(path), "old contents");
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"w.safetensors"});
}

TEST_F(SafetensorsTest, AtomicWriteReplacesAndLeavesNoTemp) {
  const fs::path path = dir_ / "out.txt";
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"out.txt"});
  EXPECT_THROW(read_file(dir_ / "nope"), std::runtime_error);
}

}  // namespace
}  // namespace emt
