#include "engine/predict/predict_command.h"

#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>

#include "engine/eval/evaluate.h"
#include "engine/eval/plots.h"
#include "engine/eval/trained_weights.h"
#include "engine/io/atomic_file.h"
#include "engine/io/csv.h"
#include "engine/predict/prediction_journal.h"
#include "engine/predict/progress.h"
#include "engine/runtime/batch.h"

namespace emt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// What every batch needs: the network, its preprocessing, and the listing with its outputs.
struct Job {
  Model* model = nullptr;
  PredictOptions predict;
  int channels = 1, input_size = 0;
  Normalization norm;
  ImageLimits limits;
  bool has_cls = false, has_seg = false, write_masks = false, strict = false;
  double threshold = 0.5;
  fs::path out_dir;
  std::vector<ImageRef> images;
  std::vector<ImageIdentity> identities;
  std::vector<std::string> masks;  // relative to out_dir; empty without masks
};

// One batch on its way through the pipeline.
struct Chunk {
  std::vector<size_t> indices;  // of its images in the listing
  std::vector<std::optional<Sample>> samples;
  std::vector<cv::Size> sizes;      // of the decoded images
  std::vector<std::string> errors;  // why a sample is missing
  std::vector<float> cls, seg;      // the network's outputs for the present samples, in order
  std::vector<PredictionRecord> records;
};

// The mask file of an image: its id with the extension replaced, under masks/. Ids that would
// leave the folder (absolute, or with "..") are flattened to their file name; repeats get _<k>.
fs::path mask_file(const std::string& id, std::set<std::string>& taken) {
  fs::path relative = fs::path(id).lexically_normal();
  if (relative.is_absolute() || relative.empty() || *relative.begin() == "..")
    relative = relative.filename();
  relative.replace_extension(".png");
  std::string name = relative.generic_string();
  for (int k = 2; !taken.insert(name).second; ++k) {
    fs::path numbered = relative;
    numbered.replace_filename(relative.stem().string() + "_" + std::to_string(k) + ".png");
    name = numbered.generic_string();
  }
  return fs::path(kMaskDir) / name;
}

std::string number(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Everything that shapes a prediction: a resumed job must run with the same, or its rows
// would mix two different jobs.
nlohmann::json job_settings(const GraphFile& file, const PredictCommandOptions& options,
                            const Job& job) {
  const ImageIdentity weights = identify_image(options.weights);
  return {{"graph", file.graph.name},
          {"weights", {weights.path, weights.size, weights.mtime_ns}},
          {"source", fs::absolute(options.source).lexically_normal().string()},
          {"threshold", job.threshold},
          {"input_size", job.input_size},
          {"norm", {job.norm.mean, job.norm.std}},
          {"masks", job.write_masks},
          {"flip_tta", job.predict.flip_tta},
          {"largest_region", job.predict.largest_region},
          {"backend", backend_name(options.backend)},
          {"precision", precision_name(options.precision)}};
}

std::shared_ptr<Chunk> next_chunk(const std::vector<size_t>& todo, size_t& next, int64_t batch) {
  auto chunk = std::make_shared<Chunk>();
  const size_t n = std::min(todo.size() - next, static_cast<size_t>(batch));
  chunk->indices.assign(todo.begin() + static_cast<std::ptrdiff_t>(next),
                        todo.begin() + static_cast<std::ptrdiff_t>(next + n));
  chunk->samples.resize(n);
  chunk->sizes.resize(n);
  chunk->errors.resize(n);
  chunk->records.resize(n);
  next += n;
  return chunk;
}

void decode(const Job& job, Chunk& chunk) {
  tbb::parallel_for(size_t{0}, chunk.samples.size(), [&](size_t i) {
    const ImageRef& image = job.images[chunk.indices[i]];
    try {
      RawSample raw{image.id, read_grey_image(image.path, job.limits), {}, 0};
      // No target: a blank mask keeps preprocess and the graph's targets fed.
      raw.mask = cv::Mat::zeros(raw.image.size(), CV_8U);
      chunk.sizes[i] = raw.image.size();
      chunk.samples[i] = preprocess(raw, job.input_size, job.channels, job.norm);
    } catch (const std::exception& e) {
      chunk.errors[i] = e.what();
    }
  });
}

void infer(const Job& job, Chunk& chunk) {
  std::vector<const Sample*> present;
  for (const auto& s : chunk.samples)
    if (s) present.push_back(&*s);
  if (!present.empty())
    predict_batch(job.model->executor(static_cast<int64_t>(present.size()), Mode::kEval), present,
                  job.predict, chunk.cls, chunk.seg);
}

// The records of the chunk's present samples, their masks written (atomically) first: a
// record in the journal promises its mask is on disk.
void finish_present(const Job& job, Chunk& chunk) {
  std::vector<size_t> present;
  for (size_t i = 0; i < chunk.samples.size(); ++i)
    if (chunk.samples[i]) present.push_back(i);
  if (present.empty()) return;
  const size_t per_cls = chunk.cls.size() / present.size();
  const size_t per_seg = chunk.seg.size() / present.size();
  tbb::parallel_for(size_t{0}, present.size(), [&](size_t k) {
    const size_t i = present[k], index = chunk.indices[i];
    PredictionRecord& record = chunk.records[i];
    record.image = job.identities[index];
    record.mask = job.masks[index];
    std::string row;  // predictions.csv without the image column
    if (job.has_cls) {
      const float prob = chunk.cls[k * per_cls];
      row += number("%.6g", prob) + "," + (prob >= job.threshold ? "1" : "0");
    } else {
      row += ",";
    }
    row += ",";
    if (job.has_seg) {
      const cv::Mat mask =
          restore_mask({chunk.seg.data() + k * per_seg, per_seg}, job.input_size, chunk.sizes[i]);
      row += number(
          "%.6g", static_cast<double>(cv::countNonZero(mask)) / static_cast<double>(mask.total()));
      if (job.write_masks) write_png(job.out_dir / record.mask, mask);
    }
    record.row = row + "," + csv_field(record.mask);
  });
}

// The records of the images that could not be read ("path: reason" becomes reason).
void finish_missing(const Job& job, Chunk& chunk, PredictProgress& progress) {
  for (size_t i = 0; i < chunk.samples.size(); ++i) {
    if (chunk.samples[i]) continue;
    const size_t index = chunk.indices[i];
    const std::string path = job.images[index].path.string();
    std::string reason = chunk.errors[i];
    if (reason.rfind(path + ": ", 0) == 0) reason.erase(0, path.size() + 2);
    if (job.strict) throw std::runtime_error(path + ": " + reason);
    progress.note("skipped " + path + ": " + reason);
    chunk.records[i] = {job.identities[index], job.masks[index], "", reason};
  }
}

// Runs the images of todo through the network, two batches in flight (one decoding while the
// other runs), appending each finished batch to the journal. Returns the images predicted per
// second of it.
double predict_images(const Job& job, const std::vector<size_t>& todo, int64_t batch,
                      PredictionJournal& journal, PredictProgress& progress) {
  size_t next = 0;
  int64_t done = 0, unreadable = 0;
  const auto start = Clock::now();
  tbb::parallel_pipeline(
      3, tbb::make_filter<void, std::shared_ptr<Chunk>>(
             tbb::filter_mode::serial_in_order,
             [&](tbb::flow_control& fc) -> std::shared_ptr<Chunk> {
               if (next < todo.size()) return next_chunk(todo, next, batch);
               fc.stop();
               return nullptr;
             }) &
             tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
                 tbb::filter_mode::parallel,
                 [&](std::shared_ptr<Chunk> chunk) {
                   decode(job, *chunk);
                   return chunk;
                 }) &
             tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
                 tbb::filter_mode::serial_in_order,
                 [&](std::shared_ptr<Chunk> chunk) {
                   infer(job, *chunk);
                   return chunk;
                 }) &
             tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
                 tbb::filter_mode::parallel,
                 [&](std::shared_ptr<Chunk> chunk) {
                   finish_present(job, *chunk);
                   return chunk;
                 }) &
             tbb::make_filter<std::shared_ptr<Chunk>, void>(
                 tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Chunk> chunk) {
                   finish_missing(job, *chunk, progress);
                   journal.append(chunk->records);
                   done += static_cast<int64_t>(chunk->records.size());
                   for (const PredictionRecord& r : chunk->records)
                     unreadable += !r.skipped.empty();
                   progress.update(done, unreadable, Clock::now());
                 }));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return seconds > 0 ? static_cast<double>(done - unreadable) / seconds : 0;
}

// predictions.csv and skipped.csv from the journal, in listing order, each written atomically.
void write_tables(const Job& job, const PredictionJournal& journal, PredictCommandResult& result) {
  std::string csv = "image,prob,malignant,lesion_fraction,mask\n";
  for (size_t i = 0; i < job.images.size(); ++i) {
    const PredictionRecord* record = journal.find(job.identities[i], job.masks[i]);
    if (!record)
      throw std::logic_error("predict: " + job.images[i].path.string() + " is not in the journal");
    const std::string path = job.images[i].path.string();
    if (!record->skipped.empty() && job.strict)
      throw std::runtime_error(path + ": " + record->skipped + " (recorded in the journal)");
    if (!record->skipped.empty()) {
      result.skipped.push_back({path, record->skipped});
    } else {
      csv += csv_field(job.images[i].id) + "," + record->row + "\n";
      ++result.predicted;
    }
  }
  write_file_atomic(job.out_dir / kPredictionsFile, csv);
  const fs::path skipped_path = job.out_dir / kSkippedFile;
  if (result.skipped.empty()) {
    fs::remove(skipped_path);  // from the journal's earlier run, before a file was replaced
    return;
  }
  std::string skipped = "path,reason\n";
  for (const ReadIssue& issue : result.skipped)
    skipped += csv_field(issue.path) + "," + csv_field(issue.reason) + "\n";
  write_file_atomic(skipped_path, skipped);
}

// The job: the network's settings from config (as load_trained_weights left it) and the
// listing with each image's identity and mask file.
Job make_job(const GraphFile& file, const PredictCommandOptions& options, const Config& config,
             double threshold, Model& model) {
  Job job;
  job.model = &model;
  job.predict = predict_options(config);
  job.channels = static_cast<int>(file.graph.inputs.front().shape.front());
  job.input_size = input_size(config);
  job.limits = image_limits(config);
  job.norm = normalization(config);
  for (const GraphOutput& o : file.graph.outputs) {
    job.has_cls = job.has_cls || o.name == kClassOutput;
    job.has_seg = job.has_seg || o.name == kMaskOutput;
  }
  job.write_masks = job.has_seg && options.write_masks;
  job.strict = config.get_bool("data.strict");
  job.threshold = threshold;
  job.out_dir = options.out_dir;
  job.images = list_images(options.source);
  if (job.images.empty()) throw std::runtime_error(options.source.string() + ": no image files");
  std::set<std::string> taken;
  for (const ImageRef& image : job.images) {
    job.masks.push_back(job.write_masks ? mask_file(image.id, taken).generic_string() : "");
    job.identities.push_back(identify_image(image.path));
  }
  return job;
}

void write_summary(const GraphFile& file, const PredictCommandOptions& options, const Job& job,
                   const TrainedWeights& trained, const PredictCommandResult& result) {
  const nlohmann::json summary = {{"graph", file.graph.name},
                                  {"weights", options.weights.string()},
                                  {"source", options.source.string()},
                                  {"images", job.images.size()},
                                  {"predicted", result.predicted},
                                  {"skipped", result.skipped.size()},
                                  {"from_journal", result.from_journal},
                                  {"journal", kPredictJournalFile},
                                  {"threshold", result.threshold},
                                  {"threshold_source", trained.threshold_source},
                                  {"input_size", job.input_size},
                                  {"flip_tta", job.predict.flip_tta},
                                  {"largest_region", job.predict.largest_region},
                                  {"images_per_s", result.images_per_s}};
  write_file_atomic(options.out_dir / kPredictSummaryFile, summary.dump(2) + "\n");
}

}  // namespace

PredictCommandResult run_predict(const GraphFile& file, const PredictCommandOptions& options) {
  if (options.out_dir.empty()) throw std::invalid_argument("predict: no output directory");
  if (options.weights.empty()) throw std::invalid_argument("predict: no weights file");
  if (options.batch <= 0) throw std::invalid_argument("predict: the batch must be positive");
  if (options.threshold && !std::isfinite(*options.threshold))
    throw std::invalid_argument("predict: the threshold must be a finite number");
  Config config = file.config;
  const TrainedWeights trained = load_trained_weights(options.weights, config, options.threshold);
  Model model(file, 0, options.backend);
  model.params().load_tensors(trained.file, options.weights.string());
  model.set_inference_precision(options.precision);
  const Job job = make_job(file, options, config, trained.threshold, model);

  PredictionJournal journal(options.out_dir, job_settings(file, options, job), options.resume);
  std::vector<size_t> todo;
  int64_t journal_unreadable = 0;
  for (size_t i = 0; i < job.images.size(); ++i) {
    const PredictionRecord* record = journal.find(job.identities[i], job.masks[i]);
    if (!record) todo.push_back(i);
    journal_unreadable += record && !record->skipped.empty();
  }
  for (const size_t i : todo)
    if (!job.masks[i].empty())
      fs::create_directories(options.out_dir / fs::path(job.masks[i]).parent_path());

  const auto say = [&](const std::string& line) {
    if (options.console) *options.console << line << "\n" << std::flush;
  };
  if (options.resume) say(journal.opening_note());
  say("predicting " + std::to_string(todo.size()) + " of " + std::to_string(job.images.size()) +
      " images from " + options.source.string() + " (threshold " + number("%g", trained.threshold) +
      " from " + trained.threshold_source + ")");
  PredictCommandResult result;
  result.threshold = trained.threshold;
  result.from_journal = static_cast<int64_t>(job.images.size() - todo.size());
  PredictProgress progress(options.console, options.console_is_terminal,
                           static_cast<int64_t>(job.images.size()), result.from_journal,
                           journal_unreadable, Clock::now());
  result.images_per_s = predict_images(job, todo, options.batch, journal, progress);
  progress.finish();

  write_tables(job, journal, result);
  write_summary(file, options, job, trained, result);
  say("predicted " + std::to_string(result.predicted) + " images (" +
      std::to_string(result.skipped.size()) + " skipped, " + std::to_string(result.from_journal) +
      " from the journal) at " + number("%.1f img/s", result.images_per_s) + " into " +
      options.out_dir.string());
  return result;
}

}  // namespace emt
