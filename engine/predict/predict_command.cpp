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

#include "engine/data/batch.h"
#include "engine/eval/evaluate.h"
#include "engine/eval/plots.h"
#include "engine/eval/trained_weights.h"
#include "engine/io/atomic_file.h"
#include "engine/io/csv.h"

namespace emt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One batch on its way through the pipeline.
struct Chunk {
  size_t first = 0;  // index of its first image in the input list
  std::vector<std::optional<Sample>> samples;
  std::vector<cv::Size> sizes;      // of the decoded images
  std::vector<std::string> errors;  // why a sample is missing
  std::vector<float> cls, seg;      // the network's outputs for the present samples, in order
  std::vector<std::string> rows;    // predictions.csv rows of the present samples
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
  const PredictOptions predict = predict_options(config);
  const int channels = static_cast<int>(file.graph.inputs.front().shape.front());
  const int input_size = static_cast<int>(config.get_int("data.input_size"));
  const Normalization norm{static_cast<float>(config.get_float("data.norm_mean")),
                           static_cast<float>(config.get_float("data.norm_std"))};
  bool has_cls = false, has_seg = false;
  for (const GraphOutput& o : file.graph.outputs) {
    has_cls = has_cls || o.name == kClassOutput;
    has_seg = has_seg || o.name == kMaskOutput;
  }
  const bool write_masks = has_seg && options.write_masks;
  const bool strict = config.get_bool("data.strict");

  const std::vector<ImageRef> images = list_images(options.source);
  if (images.empty()) throw std::runtime_error(options.source.string() + ": no image files");
  std::set<std::string> taken;
  std::vector<fs::path> masks;
  for (const ImageRef& image : images)
    masks.push_back(write_masks ? mask_file(image.id, taken) : fs::path());
  fs::create_directories(options.out_dir);
  for (const fs::path& mask : masks)
    if (!mask.empty()) fs::create_directories(options.out_dir / mask.parent_path());
  const auto say = [&](const std::string& line) {
    if (options.console) *options.console << line << "\n" << std::flush;
  };
  say("predicting " + std::to_string(images.size()) + " images from " + options.source.string() +
      " (threshold " + number("%g", trained.threshold) + " from " + trained.threshold_source + ")");

  PredictCommandResult result;
  result.threshold = trained.threshold;
  std::string csv = "image,prob,malignant,lesion_fraction,mask\n";
  size_t next = 0, done = 0;
  const auto start = Clock::now();
  auto last_report = start;
  // Two batches in flight: one decoding while the other runs through the network.
  tbb::parallel_pipeline(
      3,
      tbb::make_filter<void, std::shared_ptr<Chunk>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> std::shared_ptr<Chunk> {
            if (next >= images.size()) {
              fc.stop();
              return nullptr;
            }
            auto chunk = std::make_shared<Chunk>();
            chunk->first = next;
            const size_t n = std::min(images.size() - next, static_cast<size_t>(options.batch));
            chunk->samples.resize(n);
            chunk->sizes.resize(n);
            chunk->errors.resize(n);
            next += n;
            return chunk;
          }) &
          tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
              tbb::filter_mode::parallel,
              [&](std::shared_ptr<Chunk> chunk) {
                tbb::parallel_for(size_t{0}, chunk->samples.size(), [&](size_t i) {
                  const ImageRef& image = images[chunk->first + i];
                  try {
                    RawSample raw{
                        image.id, read_grey_image(image.path, image_limits(config)), {}, 0};
                    // No target: a blank mask keeps preprocess and the graph's targets fed.
                    raw.mask = cv::Mat::zeros(raw.image.size(), CV_8U);
                    chunk->sizes[i] = raw.image.size();
                    chunk->samples[i] = preprocess(raw, input_size, channels, norm);
                  } catch (const std::exception& e) {
                    chunk->errors[i] = e.what();
                  }
                });
                return chunk;
              }) &
          tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
              tbb::filter_mode::serial_in_order,
              [&](std::shared_ptr<Chunk> chunk) {
                std::vector<const Sample*> present;
                for (const auto& s : chunk->samples)
                  if (s) present.push_back(&*s);
                if (!present.empty())
                  predict_batch(model.executor(static_cast<int64_t>(present.size()), Mode::kEval),
                                present, predict, chunk->cls, chunk->seg);
                return chunk;
              }) &
          tbb::make_filter<
              std::shared_ptr<Chunk>,
              std::shared_ptr<Chunk>>(tbb::filter_mode::parallel,
                                      [&](std::shared_ptr<Chunk> chunk) {
                                        std::vector<size_t> present;
                                        for (size_t i = 0; i < chunk->samples.size(); ++i)
                                          if (chunk->samples[i]) present.push_back(i);
                                        chunk->rows.resize(present.size());
                                        const size_t per = has_seg && !present.empty()
                                                               ? chunk->seg.size() / present.size()
                                                               : 0;
                                        tbb::parallel_for(size_t{0}, present.size(), [&](size_t k) {
                                          const size_t i = present[k];
                                          const size_t index = chunk->first + i;
                                          std::string row = csv_field(images[index].id) + ",";
                                          if (has_cls) {
                                            const float prob =
                                                chunk
                                                    ->cls[k * (chunk->cls.size() / present.size())];
                                            row += number("%.6g", prob) + "," +
                                                   (prob >= trained.threshold ? "1" : "0");
                                          } else {
                                            row += ",";
                                          }
                                          row += ",";
                                          if (has_seg) {
                                            const cv::Mat mask =
                                                restore_mask({chunk->seg.data() + k * per, per},
                                                             input_size, chunk->sizes[i]);
                                            row +=
                                                number("%.6g",
                                                       static_cast<double>(cv::countNonZero(mask)) /
                                                           static_cast<double>(mask.total()));
                                            if (write_masks) {
                                              const fs::path path = options.out_dir / masks[index];
                                              fs::create_directories(path.parent_path());
                                              write_png(path, mask);
                                              row += "," + csv_field(masks[index].generic_string());
                                            } else {
                                              row += ",";
                                            }
                                          } else {
                                            row += ",";
                                          }
                                          chunk->rows[k] = row + "\n";
                                        });
                                        return chunk;
                                      }) &
          tbb::make_filter<std::shared_ptr<Chunk>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Chunk> chunk) {
                for (size_t i = 0; i < chunk->samples.size(); ++i) {
                  if (chunk->samples[i]) continue;
                  const std::string& path = images[chunk->first + i].path.string();
                  // Decoding errors already start with the path.
                  std::string reason = chunk->errors[i];
                  if (reason.rfind(path + ": ", 0) == 0) reason.erase(0, path.size() + 2);
                  if (strict) throw std::runtime_error(path + ": " + reason);
                  say("skipped " + path + ": " + reason);
                  result.skipped.push_back({path, reason});
                }
                for (const std::string& row : chunk->rows) csv += row;
                result.predicted += static_cast<int64_t>(chunk->rows.size());
                done += chunk->samples.size();
                const auto now = Clock::now();
                if (now - last_report > std::chrono::seconds(2) || done == images.size()) {
                  last_report = now;
                  const double seconds = std::chrono::duration<double>(now - start).count();
                  const double rate = static_cast<double>(done) / seconds;
                  say(std::to_string(done) + "/" + std::to_string(images.size()) + " images, " +
                      number("%.1f img/s", rate) + ", ETA " +
                      number("%.0fs", static_cast<double>(images.size() - done) / rate));
                }
              }));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.images_per_s = static_cast<double>(result.predicted) / seconds;

  write_file_atomic(options.out_dir / kPredictionsFile, csv);
  const fs::path skipped_path = options.out_dir / kSkippedFile;
  if (result.skipped.empty()) {
    fs::remove(skipped_path);  // from an earlier prediction into the same folder
  } else {
    std::string skipped = "path,reason\n";
    for (const ReadIssue& issue : result.skipped)
      skipped += csv_field(issue.path) + "," + csv_field(issue.reason) + "\n";
    write_file_atomic(skipped_path, skipped);
  }
  const nlohmann::json summary = {{"graph", file.graph.name},
                                  {"weights", options.weights.string()},
                                  {"source", options.source.string()},
                                  {"images", images.size()},
                                  {"predicted", result.predicted},
                                  {"skipped", result.skipped.size()},
                                  {"threshold", result.threshold},
                                  {"threshold_source", trained.threshold_source},
                                  {"input_size", input_size},
                                  {"flip_tta", predict.flip_tta},
                                  {"largest_region", predict.largest_region},
                                  {"images_per_s", result.images_per_s}};
  write_file_atomic(options.out_dir / kPredictSummaryFile, summary.dump(2) + "\n");
  say("predicted " + std::to_string(result.predicted) + " images (" +
      std::to_string(result.skipped.size()) + " skipped) at " +
      number("%.1f img/s", result.images_per_s) + " into " + options.out_dir.string());
  return result;
}

}  // namespace emt
