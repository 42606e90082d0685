#include "engine/predict/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "engine/io/atomic_file.h"

namespace emt {
namespace {

constexpr size_t kCrcDigits = 8;

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

std::string hex8(uint32_t v) {
  char buf[kCrcDigits + 1];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// The payload of one line (without its newline), or false when the line is not a valid record.
bool unframe(std::string_view line, std::string& payload) {
  if (line.size() < kCrcDigits + 1 || line[line.size() - kCrcDigits - 1] != '\t') return false;
  const std::string_view body = line.substr(0, line.size() - kCrcDigits - 1);
  if (line.substr(line.size() - kCrcDigits) != hex8(crc32(body))) return false;
  payload = body;
  return true;
}

[[noreturn]] void throw_os_error(const std::filesystem::path& path, const char* what, int err) {
  throw std::runtime_error(path.string() + ": " + what + ": " + std::strerror(err));
}

}  // namespace

uint32_t crc32(std::string_view bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (const char b : bytes) c = kCrcTable[(c ^ static_cast<uint8_t>(b)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string frame_record(std::string_view payload) {
  if (payload.find('\n') != std::string_view::npos)
    throw std::invalid_argument("journal record holds a newline: " + std::string(payload));
  return std::string(payload) + "\t" + hex8(crc32(payload)) + "\n";
}

JournalScan scan_journal(std::string_view bytes) {
  JournalScan scan;
  size_t line = 1;
  for (size_t begin = 0; begin < bytes.size(); ++line) {
    const size_t end = bytes.find('\n', begin);
    std::string payload;
    if (end == std::string_view::npos || !unframe(bytes.substr(begin, end - begin), payload)) {
      scan.first_invalid_line = line;
      break;
    }
    scan.payloads.push_back(std::move(payload));
    begin = end + 1;
    scan.valid_bytes = begin;
  }
  return scan;
}

Journal::Journal(const std::filesystem::path& path)
    : path_(path), fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
  if (fd_.get() < 0) throw_os_error(path, "cannot open the journal", errno);
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      throw std::runtime_error(path.string() + ": another process is writing this journal");
    throw_os_error(path, "cannot lock the journal", errno);
  }
  const std::string bytes = read_file(path);
  scan_ = scan_journal(bytes);
  size_ = scan_.valid_bytes;
  dropped_bytes_ = bytes.size() - size_;
  if (dropped_bytes_ > 0 &&
      (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0 || ::fdatasync(fd_.get()) != 0))
    throw_os_error(path, "cannot cut off the torn tail of the journal", errno);
  if (bytes.empty()) sync_directory(path.parent_path());  // the journal's creation is durable
}

void Journal::append(const std::vector<std::string>& payloads) {
  std::string bytes;
  for (const std::string& payload : payloads) bytes += frame_record(payload);
  int err = write_all(fd_.get(), bytes);
  if (err == 0 && ::fdatasync(fd_.get()) != 0) err = errno;
  if (err != 0) {
    // A partly written batch must not stay as a torn record in front of later appends.
    const bool cut = ::ftruncate(fd_.get(), static_cast<off_t>(size_)) == 0;
    throw std::runtime_error(
        path_.string() + ": cannot append to the journal: " + std::strerror(err) +
        (cut ? "" : " (a partial record stays; the next opening cuts it off)"));
  }
  size_ += bytes.size();
}

}  // namespace emt
