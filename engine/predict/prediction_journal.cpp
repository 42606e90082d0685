#include "engine/predict/prediction_journal.h"

#include <sys/stat.h>

#include <regex>
#include <stdexcept>

namespace emt {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHeaderTag = "emt-predict-journal 1";
constexpr const char* kPredictedTag = "P";
constexpr const char* kSkippedTag = "S";

// Fields are tab-separated; tabs, newlines and backslashes inside them are escaped.
std::string escape(const std::string& field) {
  std::string out;
  for (const char c : field) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  return out;
}

std::vector<std::string> split_fields(const std::string& payload) {
  std::vector<std::string> fields(1);
  for (size_t i = 0; i < payload.size(); ++i) {
    const char c = payload[i];
    if (c == '\t') {
      fields.emplace_back();
    } else if (c == '\\' && i + 1 < payload.size()) {
      const char e = payload[++i];
      fields.back() += e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e;
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::string key_of(const ImageIdentity& image, const std::string& mask) {
  return image.path + '\0' + std::to_string(image.size) + '\0' + std::to_string(image.mtime_ns) +
         '\0' + mask;
}

// Settings dumped with invalid UTF-8 (a path's bytes) replaced, so any path can be recorded.
std::string dump(const nlohmann::json& settings) {
  return settings.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "key: A in the journal, B now" for every setting that differs.
std::string differences(const nlohmann::json& journal, const nlohmann::json& now) {
  std::string out;
  nlohmann::json keys = journal;
  keys.update(now);
  for (const auto& [key, unused] : keys.items()) {
    const nlohmann::json then_value = journal.value(key, nlohmann::json());
    const nlohmann::json now_value = now.value(key, nlohmann::json());
    if (dump(then_value) == dump(now_value)) continue;
    out += "\n  " + key + ": " + dump(then_value) + " in the journal, " + dump(now_value) + " now";
  }
  return out;
}

// The journal's path, once DIR is fit for the job: missing or empty, or (resume) holding a
// journal.
fs::path prepare_directory(const fs::path& dir, bool resume) {
  const fs::path journal = dir / kPredictJournalFile;
  std::error_code ec;
  const bool has_entries = fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
  const bool has_journal = fs::exists(journal, ec);
  if (has_journal && !resume)
    throw std::runtime_error(dir.string() + ": holds " + kPredictJournalFile +
                             " of an earlier job; add --resume to continue it, or choose an "
                             "empty folder");
  if (has_entries && !has_journal)
    throw std::runtime_error(dir.string() + ": not empty and no folder of a resumable engine " +
                             "predict (it has no " + kPredictJournalFile +
                             "); choose an empty folder");
  fs::create_directories(dir);
  return journal;
}

// A killed job's write_file_atomic leaves "<name>.tmp-<pid>" behind.
void remove_temporary_files(const fs::path& dir) {
  static const std::regex temporary(R"(.*\.tmp-[0-9]+)");
  std::vector<fs::path> leftovers;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), temporary))
      leftovers.push_back(e.path());
  for (const fs::path& path : leftovers) fs::remove(path);
}

}  // namespace

ImageIdentity identify_image(const fs::path& path) {
  ImageIdentity id{fs::absolute(path).lexically_normal().string()};
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    id.size = static_cast<int64_t>(st.st_size);
    id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  return id;
}

std::string prediction_record_payload(const PredictionRecord& r) {
  const bool predicted = r.skipped.empty();
  return std::string(predicted ? kPredictedTag : kSkippedTag) + "\t" + escape(r.image.path) + "\t" +
         std::to_string(r.image.size) + "\t" + std::to_string(r.image.mtime_ns) + "\t" +
         escape(r.mask) + "\t" + escape(predicted ? r.row : r.skipped);
}

PredictionRecord parse_prediction_record(const std::string& payload) {
  const std::vector<std::string> f = split_fields(payload);
  if (f.size() != 6 || (f[0] != kPredictedTag && f[0] != kSkippedTag))
    throw std::runtime_error("not an image record: " + payload);
  PredictionRecord r;
  try {
    r.image = {f[1], std::stoll(f[2]), std::stoll(f[3])};
  } catch (const std::logic_error&) {
    throw std::runtime_error("image record with a malformed size or time: " + payload);
  }
  r.mask = f[4];
  (f[0] == kPredictedTag ? r.row : r.skipped) = f[5];
  return r;
}

PredictionJournal::PredictionJournal(const fs::path& dir, const nlohmann::json& settings,
                                     bool resume)
    : path_(prepare_directory(dir, resume)), journal_(path_) {
  const std::vector<std::string>& records = journal_.records();
  if (records.empty()) {
    journal_.append({std::string(kHeaderTag) + "\t" + escape(dump(settings))});
    return;
  }
  const std::vector<std::string> header = split_fields(records.front());
  if (header.size() != 2 || header[0] != kHeaderTag)
    throw std::runtime_error(path_.string() + ":1: not a journal of engine predict");
  const nlohmann::json recorded = nlohmann::json::parse(header[1], nullptr, false);
  if (recorded.is_discarded() || dump(recorded) != dump(settings))
    throw std::runtime_error(
        path_.string() +
        ": written by a job with other settings; predict into a new folder "
        "(or resume with the same ones):" +
        differences(recorded.is_object() ? recorded : nlohmann::json::object(), settings));
  for (size_t i = 1; i < records.size(); ++i) {
    try {
      PredictionRecord r = parse_prediction_record(records[i]);
      std::string key = key_of(r.image, r.mask);
      done_[key] = std::move(r);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path_.string() + ":" + std::to_string(i + 1) + ": " + e.what());
    }
  }
  remove_temporary_files(dir);
}

const PredictionRecord* PredictionJournal::find(const ImageIdentity& image,
                                                const std::string& mask) const {
  const auto it = done_.find(key_of(image, mask));
  return it == done_.end() ? nullptr : &it->second;
}

std::string PredictionJournal::opening_note() const {
  std::string note =
      "resuming " + path_.string() + ": " + std::to_string(done_.size()) + " images already done";
  if (journal_.dropped_bytes() > 0)
    note += "; dropped a torn record at line " + std::to_string(journal_.dropped_at_line()) + " (" +
            std::to_string(journal_.dropped_bytes()) + " bytes)";
  return note;
}

void PredictionJournal::append(const std::vector<PredictionRecord>& records) {
  std::vector<std::string> payloads;
  for (const PredictionRecord& r : records) payloads.push_back(prediction_record_payload(r));
  journal_.append(payloads);
  for (const PredictionRecord& r : records) done_[key_of(r.image, r.mask)] = r;
}

}  // namespace emt
