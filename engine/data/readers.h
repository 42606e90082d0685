// Reads labelled breast-ultrasound images from disk: the BUSI folder layout and CSV manifests.
// Real data sets hold broken files, so bad samples are reported and skipped rather than allowed
// to abort a run halfway through loading; strict mode turns the first one into an error.
#pragma once

#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "engine/data/phantom.h"
#include "engine/io/image_limits.h"

namespace emt {

class Config;

// The image limits set in [data] (the config schema refuses values below 1 where they are set).
ImageLimits image_limits(const Config& config);

struct ReadOptions {
  // BUSI's normal class has no lesion; EMT-Net classifies benign against malignant only.
  bool include_normal = false;
  // Throw std::runtime_error("<path>: <reason>") at the first bad sample instead of skipping it.
  bool strict = false;
  // Images over these limits are bad samples, refused from their header without decoding.
  ImageLimits limits;
};

struct ReadIssue {
  std::string path;
  std::string reason;
};

struct ReadReport {
  std::vector<ReadIssue> issues;  // one per skipped sample (or orphan file), in reading order
  int excluded_normal = 0;        // normal images left out because include_normal is off
};

// A sample with the provenance a manifest gives it.
struct LabeledImage {
  RawSample sample;
  std::string group;  // manifest's group column, empty when absent
  std::string path;   // image file as resolved from the manifest
};

// Decodes any supported file (8-bit grey, RGB or RGBA PNG; 16-bit PNG; JPEG; BMP) to 8-bit grey.
// 16-bit values are scaled by 1/257 before colour conversion, so a 16-bit copy of an 8-bit image
// decodes to the same pixels; alpha is ignored. EXIF orientation is not applied, so an image and
// its mask stay aligned whatever their formats. Throws std::runtime_error("<path>: <reason>"),
// without decoding, for an image over `limits`; std::bad_alloc when memory runs out.
cv::Mat read_grey_image(const std::filesystem::path& path, const ImageLimits& limits);

// read_grey_image with every non-zero pixel set to 255: masks come as 1-bit, 8-bit or RGB(A).
cv::Mat read_mask(const std::filesystem::path& path, const ImageLimits& limits);

// dir/{benign,malignant[,normal]}/<name>.<png|jpg|jpeg|bmp> with masks <name>_mask.<ext> and
// extra lesions in <name>_mask_1.<ext>, <name>_mask_2.<ext>, ... merged by union. Labels: benign
// 0, malignant 1, normal 0. Ids are "<class>/<name>"; samples come in class order, then natural
// name order ("x (2)" before "x (10)"). Other files and folders are ignored. An image without a
// mask, or a mask without an image, is bad data, and so is a file that runs the process out of
// memory (std::bad_alloc). Throws std::runtime_error if dir holds neither
// a benign nor a malignant folder.
std::vector<RawSample> read_busi_folder(const std::filesystem::path& dir, const ReadOptions& opts,
                                        ReadReport& report);

// A CSV file whose header names the columns image, label, mask and optionally group, in any
// order. RFC 4180 quoting: quoted fields may hold commas, newlines and doubled quotes; unquoted
// fields are trimmed. Labels: benign / malignant / normal or 0 / 1, case-insensitive. Relative
// paths are resolved against the manifest's folder. Ids are the image field as written.
// Malformed rows, missing files, unknown labels and repeated images are bad data, reported with
// "<manifest>:<line>"; a missing or unusable header throws std::runtime_error with file:line.
std::vector<LabeledImage> read_csv_manifest(const std::filesystem::path& manifest,
                                            const ReadOptions& opts, ReadReport& report);

// An unlabelled image to predict on: its id (how outputs name it) and its file.
struct ImageRef {
  std::string id;
  std::filesystem::path path;
};

// The images `source` names, for prediction: every image file (.png, .jpg, .jpeg, .bmp) below a
// folder, recursively, in natural path order, except BUSI-style masks (<name>_mask.<ext>,
// <name>_mask_<k>.<ext>), with ids relative to the folder; the image column of a CSV manifest
// (other columns ignored, relative paths resolved against its folder, ids as written); or one
// image file (its name as id). Nothing is decoded. Throws std::runtime_error (with file:line for
// a manifest) when source does not exist or the manifest has no image column or a malformed row.
std::vector<ImageRef> list_images(const std::filesystem::path& source);

}  // namespace emt
