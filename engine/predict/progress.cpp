#include "engine/predict/progress.h"

#include <cstdio>
#include <ostream>

namespace emt {
namespace {

constexpr auto kPlainInterval = std::chrono::seconds(10);
constexpr int64_t kPlainSteps = 10;  // a plain line at every tenth of the job
// Redrawing the bar more often than this only costs terminal output.
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr int kBarWidth = 24;
constexpr const char* kClearToEnd = "\033[K";

std::string format(const char* spec, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

}  // namespace

PredictProgress::PredictProgress(std::ostream* out, bool terminal, int64_t total,
                                 int64_t from_journal, int64_t journal_unreadable,
                                 Clock::time_point start)
    : out_(out),
      terminal_(terminal),
      total_(total),
      from_journal_(from_journal),
      journal_unreadable_(journal_unreadable),
      start_(start),
      last_output_(start) {}

std::string PredictProgress::status(Clock::time_point now) const {
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
  const int64_t left = total_ - from_journal_ - done_;
  std::string text = std::to_string(from_journal_ + done_) + "/" + std::to_string(total_) +
                     " images (" + std::to_string(from_journal_) + " from the journal, " +
                     std::to_string(journal_unreadable_ + unreadable_) + " unreadable), " +
                     format("%.1f img/s", rate) + ", ETA ";
  return text + (rate > 0 ? format("%.0fs", static_cast<double>(left) / rate) : "?");
}

void PredictProgress::update(int64_t done, int64_t unreadable, Clock::time_point now) {
  done_ = done;
  unreadable_ = unreadable;
  if (!out_) return;
  const int64_t finished = from_journal_ + done_;
  const bool complete = finished >= total_;
  if (terminal_) {
    if (complete || now - last_output_ >= kRedrawInterval) draw(now);
    return;
  }
  const bool step = total_ > 0 && finished * kPlainSteps >= next_step_ * total_;
  if (complete || step || now - last_output_ >= kPlainInterval) {
    *out_ << status(now) << "\n" << std::flush;
    last_output_ = now;
    while (total_ > 0 && finished * kPlainSteps >= next_step_ * total_) ++next_step_;
  }
}

void PredictProgress::draw(Clock::time_point now) {
  const int filled =
      total_ > 0 ? static_cast<int>((from_journal_ + done_) * kBarWidth / total_) : kBarWidth;
  *out_ << "\r[" << std::string(static_cast<size_t>(filled), '#')
        << std::string(static_cast<size_t>(kBarWidth - filled), '.') << "] " << status(now)
        << kClearToEnd << std::flush;
  last_output_ = now;
  bar_drawn_ = true;
}

void PredictProgress::note(const std::string& line) {
  if (!out_) return;
  if (terminal_ && bar_drawn_) {
    *out_ << "\r" << kClearToEnd << line << "\n";
    draw(last_output_);
  } else {
    *out_ << line << "\n" << std::flush;
  }
}

void PredictProgress::finish() {
  if (out_ && terminal_ && bar_drawn_) *out_ << "\n" << std::flush;
  bar_drawn_ = false;
}

}  // namespace emt
