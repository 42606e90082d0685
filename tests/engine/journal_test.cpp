// The append-only journal (engine/predict/journal.h): CRC-32 against its published check value,
// every possible torn tail of a journal, and a journal reopened after a kill.
#include "engine/predict/journal.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"

namespace {

namespace fs = std::filesystem;
using emt::test::read_text;

TEST(Crc32, MatchesTheStandardCheckValues) {
  // The check value of CRC-32/ISO-HDLC (zlib, PNG) and of the empty string.
  EXPECT_EQ(emt::crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(emt::crc32(""), 0u);
  EXPECT_EQ(emt::frame_record("123456789"), "123456789\tcbf43926\n");
  EXPECT_THROW(emt::frame_record("two\nlines"), std::invalid_argument);
}

// Cut anywhere, a journal keeps exactly the records whose newline made it: those are counted
// here from the cut's position, independently of the scanner.
TEST(ScanJournal, EveryCutKeepsTheCompleteRecordsOnly) {
  const std::vector<std::string> payloads = {"header", "a\tb with tab", "", "last one"};
  std::string bytes;
  std::vector<size_t> ends;  // where each record's line ends
  for (const std::string& p : payloads) {
    bytes += emt::frame_record(p);
    ends.push_back(bytes.size());
  }
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    size_t complete = 0;
    while (complete < ends.size() && ends[complete] <= cut) ++complete;
    const emt::JournalScan scan = emt::scan_journal(std::string_view(bytes).substr(0, cut));
    ASSERT_EQ(scan.payloads.size(), complete) << "cut at " << cut;
    EXPECT_EQ(scan.valid_bytes, complete ? ends[complete - 1] : 0) << cut;
    const bool on_boundary = cut == (complete ? ends[complete - 1] : 0);
    EXPECT_EQ(scan.first_invalid_line, on_boundary ? 0u : complete + 1) << cut;
    for (size_t r = 0; r < complete; ++r) EXPECT_EQ(scan.payloads[r], payloads[r]);
  }
}

// A changed byte (garbage a power loss leaves) fails its record's checksum: that record and all
// after it are dropped, the ones before kept.
TEST(ScanJournal, AFlippedByteDropsItsRecordAndTheRest) {
  const std::string a = emt::frame_record("first"), b = emt::frame_record("second"),
                    c = emt::frame_record("third");
  std::string bytes = a + b + c;
  bytes[a.size() + 2] ^= 0x20;  // "second" -> "seCond"
  const emt::JournalScan scan = emt::scan_journal(bytes);
  EXPECT_EQ(scan.payloads, std::vector<std::string>{"first"});
  EXPECT_EQ(scan.valid_bytes, a.size());
  EXPECT_EQ(scan.first_invalid_line, 2u);
  EXPECT_EQ(emt::scan_journal(a + "\n" + c).first_invalid_line, 2u) << "an empty line";
  EXPECT_EQ(emt::scan_journal(a + "x\t0000000\n").payloads.size(), 1u) << "7 hex digits";
}

class JournalFile : public emt::test::TempDirTest {};

TEST_F(JournalFile, ReopeningCutsATornTailAndAppendsAfterTheValidRecords) {
  const fs::path path = dir_ / "j";
  {
    emt::Journal journal(path);
    EXPECT_TRUE(journal.records().empty());
    journal.append({"one", "two"});
    journal.append({"three"});
  }
  const std::string intact = read_text(path);
  EXPECT_EQ(intact,
            emt::frame_record("one") + emt::frame_record("two") + emt::frame_record("three"));
  write("j", intact + "fou");  // a kill in the middle of the next batch
  {
    emt::Journal journal(path);
    EXPECT_EQ(journal.records(), (std::vector<std::string>{"one", "two", "three"}));
    EXPECT_EQ(journal.dropped_bytes(), 3u);
    EXPECT_EQ(journal.dropped_at_line(), 4u);
    EXPECT_EQ(fs::file_size(path), intact.size()) << "the torn tail is cut off the file";
    journal.append({"four"});
  }
  const emt::Journal journal(path);
  EXPECT_EQ(journal.records(), (std::vector<std::string>{"one", "two", "three", "four"}));
  EXPECT_EQ(journal.dropped_bytes(), 0u);
}

TEST_F(JournalFile, ASecondWriterIsRefusedWhileTheFirstHoldsIt) {
  const emt::Journal first(dir_ / "j");
  try {
    const emt::Journal second(dir_ / "j");
    FAIL() << "two writers of one journal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another process"), std::string::npos) << e.what();
  }
}

}  // namespace
