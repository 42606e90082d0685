// The journal of `engine predict` (engine/predict/prediction_journal.h): records round trip
// whatever their paths hold, folders are refused or continued as the rules say, and a killed
// job's temporary files are cleared.
#include "engine/predict/prediction_journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/engine/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;

TEST(PredictionRecord, RoundTripsTabsNewlinesAndBackslashes) {
  emt::PredictionRecord predicted;
  predicted.image = {"/data/a\tb\\c\nd.png", 1234, 1700000000123456789};
  predicted.mask = "masks/a\tb.png";
  predicted.row = "0.5,1,0.25,x";
  const emt::PredictionRecord back =
      emt::parse_prediction_record(emt::prediction_record_payload(predicted));
  EXPECT_EQ(back.image, predicted.image);
  EXPECT_EQ(back.mask, predicted.mask);
  EXPECT_EQ(back.row, predicted.row);
  EXPECT_TRUE(back.skipped.empty());
  emt::PredictionRecord skipped;
  skipped.image = {"/x.png", -1, 0};
  skipped.skipped = "cannot decode\\twice";
  const std::string payload = emt::prediction_record_payload(skipped);
  EXPECT_EQ(payload.find('\n'), std::string::npos);
  EXPECT_EQ(emt::parse_prediction_record(payload).skipped, skipped.skipped);
  EXPECT_THROW(emt::parse_prediction_record("P\t/x.png\tbig\t0\t\trow"), std::runtime_error);
  EXPECT_THROW(emt::parse_prediction_record("header\tonly"), std::runtime_error);
}

class PredictionJournalDir : public emt::test::TempDirTest {};

TEST_F(PredictionJournalDir, IdentityIsStatsSizeAndNanosecondMtime) {
  const fs::path file = write("i.png", "12345");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  const emt::ImageIdentity id = emt::identify_image(file);
  EXPECT_EQ(id.path, file.string());
  EXPECT_EQ(id.size, 5);
  EXPECT_EQ(id.mtime_ns, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec);
  EXPECT_EQ(emt::identify_image(dir_ / "missing.png").size, -1);
}

TEST_F(PredictionJournalDir, RefusesAFullFolderAndAJournalWithoutResumeAndContinuesItWith) {
  const nlohmann::json settings = {{"threshold", 0.5}, {"source", "/a"}};
  write("out/notes.txt", "not ours");
  for (const bool resume : {false, true}) {
    try {
      emt::PredictionJournal journal(dir_ / "out", settings, resume);
      FAIL() << "a folder that is not empty and holds no journal, resume " << resume;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("choose an empty folder"), std::string::npos)
          << e.what();
    }
  }

  const emt::PredictionRecord record{emt::identify_image(write("img/a.png", "a")), "", "1,0,,", ""};
  { emt::PredictionJournal(dir_ / "job", settings, false).append({record}); }
  try {
    emt::PredictionJournal journal(dir_ / "job", settings, false);
    FAIL() << "a folder holding a journal, without resume";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("add --resume"), std::string::npos) << e.what();
  }
  write("job/masks/x.png.tmp-4242", "a killed job's half-written mask");
  write("job/masks/x.png.tmpl", "not a temporary file");
  const emt::PredictionJournal resumed(dir_ / "job", settings, true);
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_NE(resumed.find(record.image, ""), nullptr);
  EXPECT_EQ(resumed.find(record.image, "")->row, "1,0,,");
  EXPECT_EQ(resumed.find(record.image, "masks/a.png"), nullptr) << "another entry of a.png";
  emt::ImageIdentity touched = record.image;
  touched.mtime_ns += 1;
  EXPECT_EQ(resumed.find(touched, ""), nullptr) << "a rewritten file is predicted again";
  EXPECT_FALSE(fs::exists(dir_ / "job/masks/x.png.tmp-4242"));
  EXPECT_TRUE(fs::exists(dir_ / "job/masks/x.png.tmpl"));
}

TEST_F(PredictionJournalDir, ResumeWithOtherSettingsNamesEachDifference) {
  { emt::PredictionJournal(dir_ / "job", {{"threshold", 0.5}, {"masks", true}}, false); }
  try {
    emt::PredictionJournal(dir_ / "job", {{"threshold", 0.25}, {"masks", true}}, true);
    FAIL() << "another threshold";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("threshold: 0.5 in the journal, 0.25 now"),
              std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("masks:"), std::string::npos) << e.what();
  }
}

}  // namespace
