// Encoded images (JPEG, PNG, ...) to and from pixels, through OpenCV when owt was built with it;
// without OpenCV every function but have_image_codec() throws one clear Error.
#pragma once
#include <cstdint>
#include <string>

#include "owt/data/dataset.h"

namespace owt {

// Whether this build decodes images (OpenCV found at build time).
bool have_image_codec();
// The Error thrown by image-folder and packed-set code in a build without OpenCV.
[[noreturn]] void throw_no_image_codec();

// Decodes `size` bytes to (3, H, W) RGB floats in [0, 1] (grey images are replicated);
// throws BadExample("cannot decode ...") when the bytes are not a readable image.
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
