// A test fixture whose tests each write their files into a fresh directory of their own.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace emt::test {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
    dir_ = std::filesystem::temp_directory_path() /
           ("emt_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
            std::to_string(::getpid()) + "_" + std::to_string(tick));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Writes `text` (a raw string literal; one leading newline is dropped so that the line after
  // the opening delimiter is line 1) to dir/name.
  std::filesystem::path write(const std::string& name, std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    const std::filesystem::path path = dir_ / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    EXPECT_TRUE(out.good()) << "cannot write " << path;
    return path;
  }

  std::filesystem::path dir_;
};

}  // namespace emt::test
