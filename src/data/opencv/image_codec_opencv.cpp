// The image codec through OpenCV (core, imgproc, imgcodecs): decode to RGB floats, encode for
// tests and benchmarks, resize-and-re-encode for `owt data pack`. Compiled only with OpenCV.
#include <opencv2/core.hpp>
#include <array>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "owt/core/error.h"
#include "owt/data/image_codec.h"

namespace owt {
namespace {

// Decoded 8-bit BGR (H, W, 3), or an empty Mat.
cv::Mat decode_bgr(const uint8_t* bytes, size_t size) {
  if (size == 0) return cv::Mat();
  cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(bytes));
  try {
    return cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    return cv::Mat();
  }
}

// libjpeg decodes a truncated JPEG "successfully" (grey rows, a warning), so look for the
// end-of-image marker FF D9 near the end (it cannot occur inside entropy-coded data).
bool truncated_jpeg(const uint8_t* b, size_t n) {
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return false;
  for (size_t i = n - 1; i >= 1 && i + 64 >= n; --i)
    if (b[i - 1] == 0xFF && b[i] == 0xD9) return false;
  return true;
}

}  // namespace

bool have_image_codec() { return true; }

void throw_no_image_codec() { throw Error("this owt was built without OpenCV"); }

void decode_image(const uint8_t* bytes, size_t size, Image& out) {
  if (truncated_jpeg(bytes, size))
    throw BadExample(cat("truncated JPEG: ", size, " bytes and no end-of-image marker"));
  cv::Mat m = decode_bgr(bytes, size);
  if (m.empty() || m.type() != CV_8UC3)
    throw BadExample(cat("cannot decode ", size, " bytes as an image (corrupt, truncated or "
                         "not an image)"));
  out.resize(3, m.rows, m.cols);
  const int64_t hw = out.h * out.w;
  float* r = out.pixels.data();
  float* g = r + hw;
  float* b = g + hw;
  static const std::array<float, 256> s = [] {  // v / 255.0f, as every reader scales
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = v / 255.0f;
    return t;
  }();
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* p = m.ptr<uint8_t>(y);
    const int64_t row = static_cast<int64_t>(y) * out.w;
    for (int x = 0; x < m.cols; ++x) {
      b[row + x] = s[p[3 * x]];
      g[row + x] = s[p[3 * x + 1]];
      r[row + x] = s[p[3 * x + 2]];
    }
  }
}

std::string encode_image(const uint8_t* hwc, int h, int w, int channels, const std::string& ext,
                         int quality) {
  if (channels != 1 && channels != 3) throw Error(cat("encode_image: ", channels, " channels"));
  cv::Mat m(h, w, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(hwc));
  cv::Mat bgr;
  if (channels == 3) cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  else bgr = m;
  std::vector<uint8_t> out;
  std::vector<int> params;
  if (ext == ".jpg" || ext == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, quality};
  if (!cv::imencode(ext, bgr, out, params)) throw Error(cat("encode_image: cannot encode ", ext));
  return std::string(out.begin(), out.end());
}

std::string shrink_encoded(const std::string& bytes, int shorter, int quality, int& h, int& w) {
  if (truncated_jpeg(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))
    throw BadExample("truncated JPEG (no end-of-image marker)");
  cv::Mat m = decode_bgr(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (m.empty())
    throw BadExample("cannot decode the file as an image (corrupt, truncated or not an image)");
  h = m.rows;
  w = m.cols;
  if (shorter <= 0 || std::min(h, w) == shorter) return bytes;
  int oh, ow;
  if (h <= w) oh = shorter, ow = std::max(1, static_cast<int>(std::lround(double(w) * shorter / h)));
  else ow = shorter, oh = std::max(1, static_cast<int>(std::lround(double(h) * shorter / w)));
  cv::Mat small;
  cv::resize(m, small, cv::Size(ow, oh), 0, 0, oh < h ? cv::INTER_AREA : cv::INTER_LINEAR);
  std::vector<uint8_t> out;
  if (!cv::imencode(".jpg", small, out, {cv::IMWRITE_JPEG_QUALITY, quality}))
    throw Error("data pack: JPEG encoding failed");
  h = oh;
  w = ow;
  return std::string(out.begin(), out.end());
}

}  // namespace owt
