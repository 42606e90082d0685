// Whole-file I/O for run outputs and weights: a crash or a failed write never leaves a torn
// file behind, and the previous version survives until the new one is complete.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace emt {

// Writes to "<path>.tmp-<pid>" next to path, fsyncs it, then renames it over path. Throws
// std::runtime_error naming the path and the OS error; the temp file never outlives a failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Throws std::runtime_error naming the path and the OS error, or saying that it is not a regular
// file (a FIFO would block, a device never end).
std::string read_file(const std::filesystem::path& path);

}  // namespace emt
