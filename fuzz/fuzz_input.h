// For fuzz targets whose reader takes a path: the input bytes written to a file in a folder of
// this process's own, below $EMT_FUZZ_SCRATCH when set (tools/fuzz.sh sets it and removes it
// after each run: libFuzzer ends with _Exit, which skips the destructor), else in /dev/shm when
// there is one, so a write per input stays cheap.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace emt::fuzz {

class ScratchDir {
 public:
  ScratchDir() {
    const char* scratch = std::getenv("EMT_FUZZ_SCRATCH");
    const std::filesystem::path shm = "/dev/shm";
    const std::filesystem::path base = scratch && *scratch ? std::filesystem::path(scratch)
                                       : std::filesystem::is_directory(shm)
                                           ? shm
                                           : std::filesystem::temp_directory_path();
    path_ = base / ("emt-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path();
}

// Writes the bytes to scratch_dir()/name and returns its path.
inline std::filesystem::path write_input(const uint8_t* data, size_t size,
                                         const std::string& name) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace emt::fuzz
