// The journal of `engine predict` (DIR/predictions.journal, framed by engine/predict/journal.h):
// a header with the job's settings, then one record per finished image, predicted or skipped.
// An image is identified by its absolute path, size and modification time (stat's st_mtim, in
// nanoseconds): cheap to check for tens of thousands of files without reading them, and changed
// by any rewrite of the file short of one that restores both size and mtime on purpose.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/predict/journal.h"

namespace emt {

inline constexpr const char* kPredictJournalFile = "predictions.journal";

struct ImageIdentity {
  std::string path;  // absolute, lexically normal
  int64_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const ImageIdentity&) const = default;
};

// The identity of the file at path now; size -1 and mtime 0 when it cannot be stat'ed (it will
// then be skipped as unreadable, and predicted once it appears).
ImageIdentity identify_image(const std::filesystem::path& path);

struct PredictionRecord {
  ImageIdentity image;
  std::string mask;     // its mask file relative to DIR; empty without masks
  std::string row;      // its predictions.csv row without the newline; empty when skipped
  std::string skipped;  // why it could not be read; empty when predicted
};

// The record payload and back; parse_prediction_record throws std::runtime_error for a payload
// that is no image record.
std::string prediction_record_payload(const PredictionRecord& record);
PredictionRecord parse_prediction_record(const std::string& payload);

class PredictionJournal {
 public:
  // Opens DIR's journal for the job described by settings. Without resume, DIR must be missing
  // or empty. With resume, a journal already in DIR must have been written with the same
  // settings, and leftover temporary files of a killed job are removed. Throws
  // std::runtime_error saying what to do instead.
  PredictionJournal(const std::filesystem::path& dir, const nlohmann::json& settings, bool resume);

  // The record of this image, when the journal has one; mask tells apart the entries of an
  // image a manifest lists twice.
  const PredictionRecord* find(const ImageIdentity& image, const std::string& mask) const;
  size_t size() const { return done_.size(); }
  // What opening found, for the console: records taken over, a torn tail dropped.
  std::string opening_note() const;

  // Durably appends one batch's records (see Journal::append).
  void append(const std::vector<PredictionRecord>& records);

 private:
  std::filesystem::path path_;
  Journal journal_;
  std::unordered_map<std::string, PredictionRecord> done_;
};

}  // namespace emt
