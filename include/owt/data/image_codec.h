// Encoded images (JPEG, PNG, ...) to and from pixels, through OpenCV when owt was built with it;
// without OpenCV every function but have_image_codec() throws one clear Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "owt/data/dataset.h"

namespace owt {

// What an encoded image declares in its header, read without decoding it.
struct ImageHeader {
  std::string format;  // "JPEG", "PNG", "BMP", "PNM", "TIFF" or "WebP"
  int64_t width = 0, height = 0;
};
// The header of `size` bytes. Throws BadExample when they are none of the formats above, the
// header is malformed, or the image is larger than limits::kImageSide a side,
// limits::kImagePixels in all or limits::kImagePixelsPerByte per byte of `size` (core/limits.h). decode_image and shrink_encoded call it before
// decoding, so no image allocates more than those limits allow. Works without OpenCV.
ImageHeader read_image_header(const uint8_t* bytes, size_t size);

// The bytes of an image file: BadExample (not naming the path: callers add it) when it cannot
// be read, is not a regular file or is larger than limits::kImageFileBytes, checked before
// anything is read.
std::string read_encoded_image(const std::string& path);

// Whether this build decodes images (OpenCV found at build time).
bool have_image_codec();
// The Error thrown by image-folder and packed-set code in a build without OpenCV.
[[noreturn]] void throw_no_image_codec();

// Decodes `size` bytes to (3, H, W) RGB floats in [0, 1] (grey images are replicated);
// throws BadExample("cannot decode ...") when the bytes are not a readable image. The codec
// libraries' own messages (libpng, libjpeg, OpenCV) never reach stderr: owt's warning or error
// naming the file is the one line a bad image gives.
void decode_image(const uint8_t* bytes, size_t size, Image& out);

// Encodes 8-bit pixels (H, W, 3) RGB (or (H, W) grey when channels = 1) as `ext` (".jpg",
// ".png", ...); `quality` is the JPEG quality.
std::string encode_image(const uint8_t* hwc, int h, int w, int channels, const std::string& ext,
                         int quality = 95);

// For packing: decodes `bytes`; when `shorter` > 0 and the shorter side differs, resizes
// (area filter) to that shorter side and re-encodes as JPEG of `quality`, else keeps the bytes.
// Sets h, w to the stored size. Throws BadExample for an unreadable image.
std::string shrink_encoded(const std::string& bytes, int shorter, int quality, int& h, int& w);

}  // namespace owt
