// The image codec of a build without OpenCV: image folders and packed sets are unavailable and
// say so in one clear error. Compiled instead of src/data/opencv/ when CMake finds no OpenCV.
#include "owt/core/error.h"
#include "owt/data/image_codec.h"

namespace owt {

bool have_image_codec() { return false; }

void throw_no_image_codec() {
  throw Error("this owt was built without OpenCV: image folders and packed sets need it "
              "(install libopencv-imgcodecs-dev libopencv-imgproc-dev libopencv-core-dev and "
              "rebuild)");
}

void decode_image(const uint8_t*, size_t, Image&) { throw_no_image_codec(); }

std::string encode_image(const uint8_t*, int, int, int, const std::string&, int) {
  throw_no_image_codec();
}

std::string shrink_encoded(const std::string&, int, int, int&, int&) { throw_no_image_codec(); }

}  // namespace owt
