#include "engine/data/dataset.h"

#include <tbb/parallel_for.h>

#include <filesystem>
#include <numeric>
#include <span>
#include <string>

#include "engine/data/group_split.h"
#include "engine/data/near_duplicates.h"
#include "engine/data/phantom.h"

namespace emt {
namespace {

// The plain grouped, stratified split, or with data.folds > 0 one cross-validation fold.
SplitIndices split_data(const Config& config, std::span<const int> labels,
                        std::span<const int> groups) {
  const auto seed = static_cast<uint64_t>(config.get_int("data.seed"));
  const int64_t folds = config.get_int("data.folds");
  if (folds == 0) {
    return grouped_stratified_split(labels, groups, config.get_float("data.train_fraction"),
                                    config.get_float("data.val_fraction"), seed);
  }
  if (folds < 3) {
    throw GraphError(config.where("data.folds"),
                     "data.folds = " + std::to_string(folds) +
                         ": must be 0 (the plain split) or at least 3 (test, val and train parts)");
  }
  const int64_t fold = config.get_int("data.fold");
  if (fold < 0 || fold >= folds) {
    throw GraphError(config.where("data.fold"),
                     "data.fold = " + std::to_string(fold) + ": must lie in 0 .. " +
                         std::to_string(folds - 1) + " (data.folds - 1)");
  }
  if (static_cast<size_t>(folds) > labels.size()) {
    throw GraphError(config.where("data.folds"), "data.folds = " + std::to_string(folds) +
                                                     ": more folds than the " +
                                                     std::to_string(labels.size()) + " images");
  }
  return grouped_kfold(labels, groups, static_cast<int>(folds), seed)[static_cast<size_t>(fold)];
}

// ", fold 2 of 8" when cross-validating, else nothing.
std::string fold_description(const Config& config) {
  const int64_t folds = config.get_int("data.folds");
  return folds == 0 ? std::string()
                    : ", fold " + std::to_string(config.get_int("data.fold")) + " of " +
                          std::to_string(folds);
}

Dataset load_files(const Config& config, int channels) {
  namespace fs = std::filesystem;
  const fs::path source = config.get_string("data.source");
  ReadOptions opts;
  opts.include_normal = config.get_bool("data.include_normal");
  opts.strict = config.get_bool("data.strict");
  opts.limits = image_limits(config);
  ReadReport report;
  std::vector<RawSample> raw;
  std::vector<std::string> manifest_groups;
  std::string kind;
  try {
    if (!fs::exists(source)) {
      throw std::runtime_error("no such file or folder");
    } else if (fs::is_directory(source)) {
      kind = "BUSI folder";
      raw = read_busi_folder(source, opts, report);
    } else if (source.extension() == ".csv") {
      kind = "manifest";
      for (LabeledImage& l : read_csv_manifest(source, opts, report)) {
        raw.push_back(std::move(l.sample));
        manifest_groups.push_back(std::move(l.group));
      }
    } else {
      throw std::runtime_error("not \"phantom\", a folder or a .csv manifest");
    }
  } catch (const std::runtime_error& e) {
    throw GraphError(config.where("data.source"),
                     "data.source = \"" + source.string() + "\": " + e.what());
  }
  if (raw.empty()) {
    // Nothing reaches the run log in this case, so the skipped files are named here.
    std::string why;
    for (const ReadIssue& issue : report.issues)
      why += "\n  skipped " + issue.path + ": " + issue.reason;
    throw GraphError(config.where("data.source"),
                     "data.source = \"" + source.string() + "\": no usable images" + why);
  }

  std::vector<cv::Mat> images;
  for (const RawSample& r : raw) images.push_back(r.image);
  NearDuplicateOptions dedup;
  dedup.threshold = config.get_float("data.dedup_threshold");
  const NearDuplicateGroups dup = find_near_duplicates(images, dedup);
  images.clear();
  const std::vector<int> groups =
      manifest_groups.empty() ? dup.group : combine_groups(group_ids(manifest_groups), dup.group);

  const int size = input_size(config);
  const Normalization norm = normalization(config);
  const auto seed = static_cast<uint64_t>(config.get_int("data.seed"));
  Dataset data;
  data.samples.resize(raw.size());
  tbb::parallel_for(size_t{0}, raw.size(), [&](size_t i) {
    data.samples[i] = preprocess(raw[i], size, channels, norm);
    raw[i] = RawSample{};
  });
  std::vector<int> labels;
  int malignant = 0;
  for (const Sample& s : data.samples) {
    labels.push_back(s.label);
    malignant += s.label;
  }
  data.split = split_data(config, labels, groups);
  data.skipped = std::move(report.issues);
  data.description = kind + " " + source.string() + ": " + std::to_string(data.samples.size()) +
                     " images (" + std::to_string(malignant) + " malignant), " +
                     std::to_string(data.skipped.size()) + " skipped, " +
                     std::to_string(dup.merged_count) + " near-duplicate groups, seed " +
                     std::to_string(seed) + fold_description(config) + ", " + std::to_string(size) +
                     "x" + std::to_string(size);
  return data;
}

}  // namespace

Dataset load_dataset(const Config& config, int channels) {
  const std::string& source = config.get_string("data.source");
  if (source != "phantom") return load_files(config, channels);
  PhantomConfig phantom;
  phantom.count = static_cast<int>(config.get_int("data.count"));
  phantom.seed = static_cast<uint64_t>(config.get_int("data.seed"));
  phantom.min_side = static_cast<int>(config.get_int("data.phantom_min_side"));
  phantom.max_side = static_cast<int>(config.get_int("data.phantom_max_side"));
  const int size = input_size(config);
  const Normalization norm = normalization(config);

  Dataset data;
  data.samples.resize(static_cast<size_t>(phantom.count));
  tbb::parallel_for(0, phantom.count, [&](int i) {
    data.samples[static_cast<size_t>(i)] =
        preprocess(generate_phantom(phantom, i), size, channels, norm);
  });
  std::vector<int> labels;
  int malignant = 0;
  for (const Sample& s : data.samples) {
    labels.push_back(s.label);
    malignant += s.label;
  }
  if (config.get_int("data.folds") == 0) {
    data.split = stratified_split(labels, config.get_float("data.train_fraction"),
                                  config.get_float("data.val_fraction"), phantom.seed);
  } else {
    std::vector<int> singletons(labels.size());  // phantoms are unrelated: one group each
    std::iota(singletons.begin(), singletons.end(), 0);
    data.split = split_data(config, labels, singletons);
  }
  data.description = "phantom: " + std::to_string(phantom.count) + " images (" +
                     std::to_string(malignant) + " malignant), seed " +
                     std::to_string(phantom.seed) + fold_description(config) + ", " +
                     std::to_string(size) + "x" + std::to_string(size);
  return data;
}

}  // namespace emt
