// An append-only journal of text records that survives being killed at any moment: each record
// is one line "<payload>\t<crc32 of payload, 8 hex digits>\n", a batch of records is written in
// one go and fdatasync'd before append returns, and opening the journal keeps its longest valid
// prefix. A record torn by a kill or a power loss (no newline yet, or a checksum that does not
// match) and everything after it is cut off, so the next append continues a clean file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/file_descriptor.h"

namespace emt {

// CRC-32 (IEEE 802.3, as zlib and PNG compute it).
uint32_t crc32(std::string_view bytes);

// One record's line. Throws std::invalid_argument when payload holds a newline.
std::string frame_record(std::string_view payload);

struct JournalScan {
  std::vector<std::string> payloads;  // of the valid records, in order
  size_t valid_bytes = 0;             // length of the valid prefix
  size_t first_invalid_line = 0;      // 1-based line of the first invalid record; 0 when none
};

// Splits journal bytes into records, stopping at the first invalid one.
JournalScan scan_journal(std::string_view bytes);

class Journal {
 public:
  // Opens path, creating it when missing, and takes an exclusive lock on it (flock), so that a
  // second process writing the same journal is refused instead of interleaving records. Cuts an
  // invalid tail off (see dropped_bytes). Throws std::runtime_error naming the path.
  explicit Journal(const std::filesystem::path& path);

  const std::vector<std::string>& records() const { return scan_.payloads; }
  // Bytes cut off at opening, and the line where they began.
  size_t dropped_bytes() const { return dropped_bytes_; }
  size_t dropped_at_line() const { return scan_.first_invalid_line; }

  // Writes the records as one write and waits for them to reach the disk. On failure the
  // journal is cut back to its previous length and std::runtime_error is thrown.
  void append(const std::vector<std::string>& payloads);

 private:
  std::filesystem::path path_;
  FileDescriptor fd_;
  JournalScan scan_;
  size_t size_ = 0;
  size_t dropped_bytes_ = 0;
};

}  // namespace emt
