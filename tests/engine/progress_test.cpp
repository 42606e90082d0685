// `engine predict`'s progress output (engine/predict/progress.h) at given moments, against text
// worked out by hand.
#include "engine/predict/progress.h"

#include <gtest/gtest.h>

#include <sstream>

namespace {

using emt::PredictProgress;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(PredictProgress, PlainLinesComeEveryTenthOfTheJobOrEveryTenSeconds) {
  std::ostringstream out;
  const PredictProgress::Clock::time_point t0{};
  PredictProgress progress(&out, false, 40, 10, 2, t0);
  progress.update(1, 0, t0 + seconds(1));    // 11/40: past the first two tenths
  progress.update(2, 0, t0 + seconds(2));    // 12/40: the third tenth
  progress.update(3, 1, t0 + seconds(3));    // 13/40: neither a tenth nor 10 s
  progress.update(4, 1, t0 + seconds(12));   // 10 s after the last line
  progress.update(30, 1, t0 + seconds(20));  // done
  progress.finish();
  EXPECT_EQ(out.str(),
            "11/40 images (10 from the journal, 2 unreadable), 1.0 img/s, ETA 29s\n"
            "12/40 images (10 from the journal, 2 unreadable), 1.0 img/s, ETA 28s\n"
            "14/40 images (10 from the journal, 3 unreadable), 0.3 img/s, ETA 78s\n"
            "40/40 images (10 from the journal, 3 unreadable), 1.5 img/s, ETA 0s\n");
}

TEST(PredictProgress, ATerminalGetsOneBarRedrawnInPlaceWithNotesAboveIt) {
  std::ostringstream out;
  const PredictProgress::Clock::time_point t0{};
  PredictProgress progress(&out, true, 4, 0, 0, t0);
  EXPECT_EQ(progress.status(t0), "0/4 images (0 from the journal, 0 unreadable), 0.0 img/s, ETA ?");
  progress.update(1, 0, t0 + seconds(1));
  progress.update(2, 0, t0 + seconds(1) + milliseconds(50));  // too soon to redraw
  progress.note("skipped x.png: truncated");
  progress.update(4, 1, t0 + seconds(2));
  progress.finish();
  const std::string clear = "\033[K";
  EXPECT_EQ(out.str(),
            "\r[######..................] 1/4 images (0 from the journal, 0 unreadable), "
            "1.0 img/s, ETA 3s" +
                clear + "\r" + clear +
                "skipped x.png: truncated\n"
                "\r[############............] 2/4 images (0 from the journal, 0 unreadable), "
                "2.0 img/s, ETA 1s" +
                clear +
                "\r[########################] 4/4 images (0 from the journal, 1 unreadable), "
                "2.0 img/s, ETA 0s" +
                clear + "\n");
}

TEST(PredictProgress, SaysNothingWithoutAStream) {
  PredictProgress progress(nullptr, true, 4, 0, 0, {});
  progress.update(4, 0, PredictProgress::Clock::time_point{} + seconds(1));
  progress.note("skipped");
  progress.finish();
  EXPECT_EQ(progress.status(PredictProgress::Clock::time_point{} + seconds(1)),
            "4/4 images (0 from the journal, 0 unreadable), 4.0 img/s, ETA 0s");
}

}  // namespace
