#include "engine/io/image_codec.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "engine/io/atomic_file.h"

namespace emt {
namespace {

using DecodeFn = bool (*)(const unsigned char*, size_t, cv::Mat*, std::string*);
using EncodeFn = bool (*)(const cv::Mat*, std::vector<unsigned char>*, std::string*);

struct Codecs {
  DecodeFn decode = nullptr;
  EncodeFn encode_png = nullptr;
};

// EMT_CODECS_MODULE in the environment, else the module this build made.
const Codecs& codecs() {
  static Codecs loaded;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* override_path = std::getenv("EMT_CODECS_MODULE");
    const std::string path =
        override_path && *override_path ? override_path : std::string(EMT_CODECS_MODULE);
    // Never unloaded: OpenCV keeps global state for the life of the process.
    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!module) {
      failure = "cannot load the image codec module " + path + ": " + dlerror() +
                " (build the emt_codecs target, or set EMT_CODECS_MODULE to its path)";
      return;
    }
    loaded.decode = reinterpret_cast<DecodeFn>(dlsym(module, "emt_codecs_decode"));
    loaded.encode_png = reinterpret_cast<EncodeFn>(dlsym(module, "emt_codecs_encode_png"));
    if (!loaded.decode || !loaded.encode_png)
      failure = path + " is not the image codec module (its entry points are missing)";
  });
  if (!failure.empty()) throw std::runtime_error(failure);
  return loaded;
}

}  // namespace

cv::Mat decode_image(const std::string& bytes, const ImageLimits& limits) {
  check_image_limits(read_image_header(bytes), limits);
  cv::Mat image;
  std::string error;
  if (!codecs().decode(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &image,
                       &error))
    throw std::runtime_error(error);
  return image;
}

std::vector<unsigned char> encode_png(const cv::Mat& image) {
  std::vector<unsigned char> bytes;
  std::string error;
  if (image.empty()) throw std::runtime_error("cannot encode an empty image as PNG");
  if (!codecs().encode_png(&image, &bytes, &error)) throw std::runtime_error(error);
  return bytes;
}

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<unsigned char> bytes;
  try {
    bytes = encode_png(image);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path.string() + ": cannot encode the image as PNG: " + e.what());
  }
  write_file_atomic(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

}  // namespace emt
