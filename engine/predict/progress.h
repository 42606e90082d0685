// Progress of a long `engine predict`: on a terminal one line redrawn in place (a bar, images/s,
// ETA, images taken from the journal, unreadable ones), otherwise a plain line every 10 s or
// every tenth of the job, whichever comes first, so that logs of an archive-sized job stay short.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace emt {

class PredictProgress {
 public:
  using Clock = std::chrono::steady_clock;

  // total: images listed; from_journal: of them, finished by an earlier run, and of those,
  // journal_unreadable could not be read. out may be null.
  PredictProgress(std::ostream* out, bool terminal, int64_t total, int64_t from_journal,
                  int64_t journal_unreadable, Clock::time_point start);

  // After each batch: images finished in this run (predicted or unreadable) and how many of
  // those were unreadable.
  void update(int64_t done, int64_t unreadable, Clock::time_point now);
  // A message (a skipped file) printed on a line of its own, under which the bar continues.
  void note(const std::string& line);
  // Ends the bar's line; further output starts on a fresh line.
  void finish();

  // "12/40 images (10 from the journal, 1 unreadable), 4.0 img/s, ETA 7s" at now.
  std::string status(Clock::time_point now) const;

 private:
  void draw(Clock::time_point now);

  std::ostream* out_;
  bool terminal_;
  int64_t total_, from_journal_, journal_unreadable_;
  int64_t done_ = 0, unreadable_ = 0;
  Clock::time_point start_, last_output_;
  int64_t next_step_ = 1;  // plain lines: the next tenth of the job that gets a line
  bool bar_drawn_ = false;
};

}  // namespace emt
