// The codec module (libemt_codecs.so) that engine/io/image_codec.cpp loads on first use: the
// only code that links OpenCV's imgcodecs. C entry points, so that dlsym finds them by name;
// exceptions (OpenCV's, and std::bad_alloc) stay on this side and come back as messages.
#include <exception>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

extern "C" {

bool emt_codecs_decode(const unsigned char* data, size_t size, cv::Mat* image, std::string* error) {
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8UC1, const_cast<unsigned char*>(data));
    *image = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
    return true;
  } catch (const cv::Exception& e) {
    *error = e.msg;
  } catch (const std::exception& e) {
    // std::bad_alloc from inside a decoder: one image too big for memory, not a dead process.
    *error = std::string("decoder failed: ") + e.what();
  }
  return false;
}

bool emt_codecs_encode_png(const cv::Mat* image, std::vector<unsigned char>* bytes,
                           std::string* error) {
  try {
    if (cv::imencode(".png", *image, *bytes)) return true;
    *error = "OpenCV could not encode it as PNG";
  } catch (const cv::Exception& e) {
    *error = e.msg;
  }
  return false;
}

}  // extern "C"
