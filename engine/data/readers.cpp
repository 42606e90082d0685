#include "engine/data/readers.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <map>
#include <new>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "engine/dsl/config.h"
#include "engine/io/image_codec.h"

namespace emt {
namespace fs = std::filesystem;
namespace {

// Carries the path and reason apart so a manifest can re-attribute them to its own line.
class ReadFailure : public std::runtime_error {
 public:
  ReadFailure(std::string path, std::string reason)
      : std::runtime_error(path + ": " + reason),
        path(std::move(path)),
        reason(std::move(reason)) {}
  std::string path, reason;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  const auto begin = std::find_if_not(s.begin(), s.end(), space);
  const auto end = std::find_if_not(s.rbegin(), std::string::const_reverse_iterator(begin), space);
  return std::string(begin, end.base());
}

std::string size_text(const cv::Mat& m) {
  return std::to_string(m.cols) + "x" + std::to_string(m.rows);
}

std::string read_bytes(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ReadFailure(path.string(), "file does not exist");
  if (fs::is_directory(path, ec)) throw ReadFailure(path.string(), "is a directory");
  // A manifest can name anything: /dev/zero would be read until memory runs out, a FIFO would
  // block the open until a writer comes.
  if (!fs::is_regular_file(path, ec))
    throw ReadFailure(path.string(), "not a regular file (a FIFO, socket or device)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ReadFailure(path.string(), "cannot open file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ReadFailure(path.string(), "read error");
  if (bytes.empty()) throw ReadFailure(path.string(), "empty file");
  return bytes;
}

// libjpeg pads a truncated scan with grey and only warns, so truncation would pass as a valid
// image. Entropy-coded data byte-stuffs every 0xFF, so the last SOS marker belongs to the main
// image and a complete file has an EOI after it (trailing vendor bytes after EOI are harmless).
bool jpeg_complete(const std::string& bytes) {
  const size_t sos = bytes.rfind("\xFF\xDA");
  const size_t eoi = bytes.rfind("\xFF\xD9");
  return sos != std::string::npos && eoi != std::string::npos && eoi > sos;
}

cv::Mat decode_grey(const fs::path& path, const ImageLimits& limits) {
  const std::string bytes = read_bytes(path);
  const bool jpeg = bytes.size() >= 2 && bytes.compare(0, 2, "\xFF\xD8") == 0;
  if (jpeg && !jpeg_complete(bytes)) throw ReadFailure(path.string(), "truncated JPEG");
  cv::Mat raw;
  try {
    raw = decode_image(bytes, limits);
  } catch (const ImageRefused& e) {
    throw ReadFailure(path.string(), e.what());
  } catch (const std::runtime_error& e) {
    throw ReadFailure(path.string(), std::string("cannot decode image: ") + e.what());
  }
  if (raw.empty()) {
    throw ReadFailure(path.string(),
                      "not a decodable image (unknown format, truncated or corrupt)");
  }
  // Scaling before the colour conversion makes a 16-bit copy of an 8-bit image (v * 257)
  // decode to exactly the 8-bit pixels.
  if (raw.depth() == CV_16U) {
    raw.convertTo(raw, CV_8U, 1.0 / 257.0);
  } else if (raw.depth() != CV_8U) {
    throw ReadFailure(path.string(), "unsupported pixel depth (only 8- and 16-bit integer)");
  }
  cv::Mat grey;
  switch (raw.channels()) {
    case 1:
      grey = raw;
      break;
    case 3:
      cv::cvtColor(raw, grey, cv::COLOR_BGR2GRAY);
      break;
    case 4:
      cv::cvtColor(raw, grey, cv::COLOR_BGRA2GRAY);
      break;
    default:
      throw ReadFailure(path.string(),
                        "unsupported channel count " + std::to_string(raw.channels()));
  }
  return grey;
}

cv::Mat binarise(const cv::Mat& grey) {
  cv::Mat mask;
  cv::compare(grey, 0, mask, cv::CMP_NE);
  return mask;
}

// "x (2)" before "x (10)": digit runs compare by value, the rest by bytes.
bool natural_less(const std::string& a, const std::string& b) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      if (ie - is != je - js) return ie - is < je - js;
      const int c = a.compare(is, ie - is, b, js, je - js);
      if (c != 0) return c < 0;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  if (a.size() - i != b.size() - j) return a.size() - i < b.size() - j;
  return a < b;  // equal under the natural order ("01" vs "1"): fall back to bytes
}

// One sample to load, or a problem already found while listing files.
struct Job {
  std::string where;  // issue location for manifest rows; empty: the failing file's path
  fs::path image;
  std::vector<fs::path> masks;
  RawSample sample;  // id and label filled in; image and mask by load()
  std::string group;
  std::optional<ReadIssue> issue;
};

void load(Job& job, const ImageLimits& limits) {
  const fs::path* reading = &job.image;  // the file an exception other than ReadFailure is about
  const auto fail = [&](const std::string& path, const std::string& reason) {
    job.sample = RawSample{};
    job.issue =
        job.where.empty() ? ReadIssue{path, reason} : ReadIssue{job.where, path + ": " + reason};
  };
  try {
    job.sample.image = decode_grey(job.image, limits);
    for (const fs::path& mask_path : job.masks) {
      reading = &mask_path;
      const cv::Mat mask = binarise(decode_grey(mask_path, limits));
      if (mask.size() != job.sample.image.size()) {
        throw ReadFailure(mask_path.string(), "mask is " + size_text(mask) + " but the image is " +
                                                  size_text(job.sample.image));
      }
      if (job.sample.mask.empty()) {
        job.sample.mask = mask;
      } else {
        cv::bitwise_or(job.sample.mask, mask, job.sample.mask);
      }
    }
  } catch (const ReadFailure& f) {
    fail(f.path, f.reason);
  } catch (const cv::Exception& e) {
    // Not expected past a successful decode, but one odd file must not abort the whole read.
    fail(reading->string(), "OpenCV error: " + e.msg);
  } catch (const std::bad_alloc&) {
    // A file within the limits can still not fit beside everything else (a huge file, raised
    // limits): that sample is lost, the read goes on. Its memory is freed by the unwinding.
    fail(reading->string(), "out of memory while reading or decoding it");
  }
}

// Decodes in parallel, then reports in job order so issues and strict errors are reproducible.
template <typename Out, typename Make>
std::vector<Out> run_jobs(std::vector<Job>& jobs, const ReadOptions& opts, ReadReport& report,
                          Make make) {
  tbb::parallel_for(size_t{0}, jobs.size(), [&](size_t i) {
    if (!jobs[i].issue) load(jobs[i], opts.limits);
  });
  std::vector<Out> out;
  for (Job& job : jobs) {
    if (job.issue) {
      if (opts.strict) throw std::runtime_error(job.issue->path + ": " + job.issue->reason);
      report.issues.push_back(std::move(*job.issue));
    } else {
      out.push_back(make(job));
    }
  }
  return out;
}

bool image_extension(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// "<name>_mask" or "<name>_mask_<n>" gives <name>; anything else is not a mask.
std::optional<std::string> mask_base(const std::string& stem) {
  const size_t at = stem.rfind("_mask");
  if (at == std::string::npos || at == 0) return std::nullopt;
  const std::string tail = stem.substr(at + 5);
  if (tail.empty()) return stem.substr(0, at);
  if (tail.size() < 2 || tail[0] != '_' ||
      !std::all_of(tail.begin() + 1, tail.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return stem.substr(0, at);
}

void list_busi_class(const fs::path& dir, const std::string& cls, int label,
                     std::vector<Job>& jobs) {
  struct Entry {
    std::vector<fs::path> images;
    std::vector<fs::path> masks;
  };
  std::map<std::string, Entry> by_name;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || !image_extension(e.path())) continue;
    const std::string stem = e.path().stem().string();
    if (const auto base = mask_base(stem)) {
      by_name[*base].masks.push_back(e.path());
    } else {
      by_name[stem].images.push_back(e.path());
    }
  }
  std::vector<std::pair<std::string, Entry>> entries(std::make_move_iterator(by_name.begin()),
                                                     std::make_move_iterator(by_name.end()));
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return natural_less(a.first, b.first); });
  const auto by_path = [](const fs::path& a, const fs::path& b) {
    return natural_less(a.filename().string(), b.filename().string());
  };
  for (auto& [name, entry] : entries) {
    std::sort(entry.images.begin(), entry.images.end(), by_path);
    std::sort(entry.masks.begin(), entry.masks.end(), by_path);
    Job job;
    job.sample.id = cls + "/" + name;
    job.sample.label = label;
    if (entry.images.empty()) {
      job.issue = ReadIssue{entry.masks.front().string(), "mask without an image named " + name};
    } else if (entry.images.size() > 1) {
      job.issue = ReadIssue{entry.images[1].string(),
                            "another image has the same name: " + entry.images[0].string()};
    } else if (entry.masks.empty()) {
      job.issue = ReadIssue{entry.images[0].string(), "no mask (" + name + "_mask.png)"};
    } else {
      job.image = entry.images[0];
      job.masks = std::move(entry.masks);
    }
    jobs.push_back(std::move(job));
  }
}

int count_busi_images(const fs::path& dir) {
  int n = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && image_extension(e.path()) && !mask_base(e.path().stem().string())) {
      ++n;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// CSV

struct CsvRecord {
  int line = 0;
  std::vector<std::string> fields;
  std::string error;
};

std::vector<CsvRecord> parse_csv(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> records;
  int line = 1;
  size_t i = 0;
  while (i < text.size()) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool quoted = false;
    bool end_of_record = false;
    while (!end_of_record) {
      if (i >= text.size()) break;
      const char c = text[i];
      if (c == '"' && trim(field).empty() && !quoted) {
        quoted = true;
        field.clear();
        ++i;
        bool closed = false;
        while (i < text.size()) {
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (text[i] == '\n') ++line;
          field += text[i++];
        }
        if (!closed) {
          rec.error = "unterminated quoted field";
          break;
        }
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) ++i;
        if (i < text.size() && text[i] != ',' && text[i] != '\n') {
          rec.error = "unexpected character after a closing quote";
          while (i < text.size() && text[i] != '\n') ++i;
        }
        continue;
      }
      if (c == ',' || c == '\n') {
        rec.fields.push_back(quoted ? field : trim(field));
        field.clear();
        quoted = false;
        ++i;
        if (c == '\n') {
          ++line;
          end_of_record = true;
        }
        continue;
      }
      field += c;
      ++i;
    }
    if (!end_of_record && rec.error.empty()) rec.fields.push_back(quoted ? field : trim(field));
    const bool blank = rec.error.empty() && rec.fields.size() == 1 && rec.fields[0].empty();
    if (!blank) records.push_back(std::move(rec));
  }
  return records;
}

std::string location(const fs::path& file, int line) {
  return file.string() + ":" + std::to_string(line);
}

}  // namespace

ImageLimits image_limits(const Config& config) {
  // The schema keeps each at least 1.
  return {config.get_int("data.max_image_pixels"), config.get_int("data.max_padded_pixels"),
          config.get_int("data.max_bytes_per_pixel")};
}

cv::Mat read_grey_image(const fs::path& path, const ImageLimits& limits) {
  return decode_grey(path, limits);
}

cv::Mat read_mask(const fs::path& path, const ImageLimits& limits) {
  return binarise(decode_grey(path, limits));
}

std::vector<RawSample> read_busi_folder(const fs::path& dir, const ReadOptions& opts,
                                        ReadReport& report) {
  const std::pair<const char*, int> classes[] = {{"benign", 0}, {"malignant", 1}, {"normal", 0}};
  if (!fs::is_directory(dir / "benign") && !fs::is_directory(dir / "malignant")) {
    throw std::runtime_error(dir.string() +
                             ": not a BUSI folder (no benign/ or malignant/ subfolder)");
  }
  std::vector<Job> jobs;
  for (const auto& [cls, label] : classes) {
    const fs::path class_dir = dir / cls;
    if (!fs::is_directory(class_dir)) continue;
    if (std::string(cls) == "normal" && !opts.include_normal) {
      report.excluded_normal += count_busi_images(class_dir);
      continue;
    }
    list_busi_class(class_dir, cls, label, jobs);
  }
  return run_jobs<RawSample>(jobs, opts, report, [](Job& job) { return std::move(job.sample); });
}

std::vector<LabeledImage> read_csv_manifest(const fs::path& manifest, const ReadOptions& opts,
                                            ReadReport& report) {
  std::string text;
  try {
    text = read_bytes(manifest);
  } catch (const ReadFailure& f) {
    throw std::runtime_error(location(manifest, 1) + ": " + f.reason);
  }
  const std::vector<CsvRecord> records = parse_csv(text);
  if (records.empty()) throw std::runtime_error(location(manifest, 1) + ": no header line");

  const CsvRecord& header = records.front();
  if (!header.error.empty())
    throw std::runtime_error(location(manifest, header.line) + ": " + header.error);
  std::map<std::string, size_t> column;
  for (size_t c = 0; c < header.fields.size(); ++c) {
    const std::string name = lower(header.fields[c]);
    if (name != "image" && name != "label" && name != "mask" && name != "group") {
      throw std::runtime_error(location(manifest, header.line) + ": unknown column \"" +
                               header.fields[c] + "\" (expected image, label, mask[, group])");
    }
    if (!column.emplace(name, c).second) {
      throw std::runtime_error(location(manifest, header.line) + ": column \"" + name +
                               "\" appears twice");
    }
  }
  for (const char* required : {"image", "label", "mask"}) {
    if (!column.count(required)) {
      throw std::runtime_error(location(manifest, header.line) + ": missing column \"" + required +
                               "\" (header must name image, label, mask[, group])");
    }
  }

  const fs::path base = manifest.parent_path();
  const auto resolve = [&](const std::string& field) {
    const fs::path p(field);
    return (p.is_absolute() ? p : base / p).lexically_normal();
  };
  std::map<fs::path, int> first_line;
  std::vector<Job> jobs;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    Job job;
    job.where = location(manifest, rec.line);
    const auto fail = [&](std::string reason) { job.issue = ReadIssue{job.where, reason}; };
    if (!rec.error.empty()) {
      fail(rec.error);
    } else if (rec.fields.size() != header.fields.size()) {
      fail("expected " + std::to_string(header.fields.size()) + " fields, found " +
           std::to_string(rec.fields.size()));
    } else {
      const std::string& image = rec.fields[column["image"]];
      const std::string& mask = rec.fields[column["mask"]];
      const std::string label = lower(rec.fields[column["label"]]);
      if (label == "normal" && !opts.include_normal) {
        ++report.excluded_normal;
        continue;
      }
      job.sample.id = image;
      job.group = column.count("group") ? rec.fields[column["group"]] : "";
      if (label == "benign" || label == "0" || label == "normal") {
        job.sample.label = 0;
      } else if (label == "malignant" || label == "1") {
        job.sample.label = 1;
      } else {
        fail("unknown label \"" + rec.fields[column["label"]] +
             "\" (expected benign, malignant, normal, 0 or 1)");
      }
      if (image.empty()) {
        fail("empty image field");
      } else if (mask.empty()) {
        fail("empty mask field");
      }
      if (!job.issue) {
        job.image = resolve(image);
        job.masks = {resolve(mask)};
        const auto [it, fresh] = first_line.emplace(job.image, rec.line);
        if (!fresh) fail(image + ": already listed at line " + std::to_string(it->second));
      }
    }
    jobs.push_back(std::move(job));
  }
  return run_jobs<LabeledImage>(jobs, opts, report, [](Job& job) {
    return LabeledImage{std::move(job.sample), std::move(job.group), job.image.string()};
  });
}

std::vector<ImageRef> list_images(const fs::path& source) {
  std::error_code ec;
  if (!fs::exists(source, ec)) throw std::runtime_error(source.string() + ": does not exist");
  std::vector<ImageRef> images;
  if (fs::is_directory(source, ec)) {
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(source)) {
      if (e.is_regular_file() && image_extension(e.path()) && !mask_base(e.path().stem().string()))
        images.push_back({fs::relative(e.path(), source).generic_string(), e.path()});
    }
    std::sort(images.begin(), images.end(),
              [](const ImageRef& a, const ImageRef& b) { return natural_less(a.id, b.id); });
    return images;
  }
  if (lower(source.extension().string()) != ".csv") return {{source.filename().string(), source}};
  std::string text;
  try {
    text = read_bytes(source);
  } catch (const ReadFailure& f) {
    throw std::runtime_error(f.what());
  }
  const std::vector<CsvRecord> records = parse_csv(text);
  if (records.empty()) throw std::runtime_error(location(source, 1) + ": no header line");
  const CsvRecord& header = records.front();
  if (!header.error.empty())
    throw std::runtime_error(location(source, header.line) + ": " + header.error);
  size_t image_column = header.fields.size();
  for (size_t c = 0; c < header.fields.size(); ++c)
    if (lower(header.fields[c]) == "image") image_column = c;
  if (image_column == header.fields.size())
    throw std::runtime_error(location(source, header.line) + ": no \"image\" column");
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    if (!rec.error.empty()) throw std::runtime_error(location(source, rec.line) + ": " + rec.error);
    if (rec.fields.size() != header.fields.size() || rec.fields[image_column].empty())
      throw std::runtime_error(
          location(source, rec.line) + ": expected " + std::to_string(header.fields.size()) +
          " fields with an image path, found " + std::to_string(rec.fields.size()));
    const fs::path path(rec.fields[image_column]);
    images.push_back(
        {rec.fields[image_column], path.is_absolute() ? path : source.parent_path() / path});
  }
  return images;
}

}  // namespace emt
