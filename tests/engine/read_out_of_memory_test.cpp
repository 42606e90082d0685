// A file that runs the dataset reader out of memory (std::bad_alloc) costs one skipped sample,
// not the whole read. The memory is bounded with RLIMIT_AS in a child process, so the rest of
// the suite keeps its address space.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "engine/data/readers.h"
#include "tests/engine/temp_dir_test.h"

// GCC defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang answers __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define EMT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMT_TEST_ASAN 1
#endif
#endif

namespace emt {
namespace {

namespace fs = std::filesystem;

// This process's address space in bytes (VmSize), what RLIMIT_AS bounds.
rlim_t address_space() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  ADD_FAILURE() << "no VmSize in /proc/self/status";
  return 0;
}

class ReadOutOfMemoryTest : public test::TempDirTest {
 protected:
  void sample(const fs::path& dir, const std::string& name, int rows) {
    cv::Mat image(rows, 32, CV_8UC1);
    cv::randu(image, 0, 256);
    fs::create_directories((dir / name).parent_path());
    ASSERT_TRUE(cv::imwrite((dir / (name + ".png")).string(), image));
    ASSERT_TRUE(cv::imwrite((dir / (name + "_mask.png")).string(), image > 128));
  }
};

TEST_F(ReadOutOfMemoryTest, AFileTooBigForMemoryIsSkippedAndTheRestRead) {
#ifdef EMT_TEST_ASAN
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot work";
#endif
  for (int k = 0; k < 4; ++k)
    sample(dir_ / "data", (k % 2 ? "malignant/m" : "benign/b") + std::to_string(k), 20 + k);
  // A valid small PNG followed by 4 GB of zeros, sparse, so it takes no disk: reading it needs
  // far more memory than the cap leaves.
  sample(dir_ / "data", "benign/huge", 20);
  fs::resize_file(dir_ / "data/benign/huge.png", uintmax_t{4} << 30);

  const auto read_under_cap = [&] {
    // Loads the codec module and starts the reader's threads before the cap.
    sample(dir_ / "warm", "benign/w", 16);
    ReadReport warm;
    read_busi_folder(dir_ / "warm", {}, warm);
    const rlim_t cap = address_space() + (rlim_t{512} << 20);
    const rlimit limit{cap, cap};
    if (setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(2);
    ReadReport report;
    const std::vector<RawSample> samples = read_busi_folder(dir_ / "data", {}, report);
    for (const ReadIssue& issue : report.issues)
      std::fprintf(stderr, "skipped %s: %s\n", issue.path.c_str(), issue.reason.c_str());
    std::fprintf(stderr, "read %zu samples\n", samples.size());
    // The child skips TearDown.
    std::error_code ec;
    fs::remove_all(dir_, ec);
    std::_Exit(samples.size() == 4 && report.issues.size() == 1 ? 0 : 1);
  };
  // A fresh process: a forked one would inherit TBB's state without its threads.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(read_under_cap(), ::testing::ExitedWithCode(0),
              "huge.png: out of memory while reading or decoding it");
}

}  // namespace
}  // namespace emt
