// The image codec through OpenCV (core, imgproc, imgcodecs): decode to RGB floats, encode for
// tests and benchmarks, resize-and-re-encode for `owt data pack`. Compiled only with OpenCV.
// Images are decoded only after read_image_header has bounded their size; the messages the
// codec libraries print themselves (libpng's "libpng error: ...", libjpeg's "Corrupt JPEG
// data: ...", OpenCV's log and its std::cerr lines) are kept off stderr and folded into owt's
// own message.
#include <stdio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <iostream>
#include <streambuf>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "owt/core/error.h"
#include "owt/data/image_codec.h"

namespace owt {
namespace {

// libpng and libjpeg write their warnings with fprintf(stderr, ...) from the decoding thread.
// glibc's `stderr` is an ordinary variable: before main, it is pointed at an unbuffered stream
// that writes straight through to file descriptor 2, except on a thread inside a decode, where
// the text is kept for that decode's error message instead.
thread_local std::string* t_codec_messages = nullptr;

ssize_t stderr_write(void*, const char* buf, size_t size) {
  if (std::string* keep = t_codec_messages) {
    if (keep->size() < 512) keep->append(buf, std::min<size_t>(size, 512 - keep->size()));
    return static_cast<ssize_t>(size);
  }
  size_t done = 0;
  while (done < size) {
    const ssize_t put = ::write(STDERR_FILENO, buf + done, size - done);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return done ? static_cast<ssize_t>(done) : -1;
    done += static_cast<size_t>(put);
  }
  return static_cast<ssize_t>(size);
}

// std::cerr, which OpenCV writes to when a decoder throws ("imdecode_(''): can't read data:
// ..."), holds the FILE* that stderr was at start-up, so it gets the same routing: unbuffered,
// every character through stderr_write.
class StderrStreambuf : public std::streambuf {
 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    const char ch = traits_type::to_char_type(c);
    return stderr_write(nullptr, &ch, 1) == 1 ? c : traits_type::eof();
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    return stderr_write(nullptr, s, static_cast<size_t>(n)) < 0 ? 0 : n;
  }
};

const bool kQuietCodecs = [] {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  cookie_io_functions_t io{};
  io.write = stderr_write;
  if (FILE* f = fopencookie(nullptr, "w", io)) {
    std::setvbuf(f, nullptr, _IONBF, 0);  // as stderr: every write goes out at once
    stderr = f;
  }
  // Never destroyed: std::cerr is flushed after every static object has died.
  static StderrStreambuf* const cerr_buf = new StderrStreambuf;
  std::cerr.rdbuf(cerr_buf);
  return true;
}();

// While alive, the codec libraries' messages on this thread go to `text()` instead of stderr.
class CodecMessages {
 public:
  CodecMessages() : outer_(t_codec_messages) { t_codec_messages = &text_; }
  ~CodecMessages() { t_codec_messages = outer_; }
  CodecMessages(const CodecMessages&) = delete;
  CodecMessages& operator=(const CodecMessages&) = delete;
  // " (libpng error: IDAT: CRC error)", or "" when the libraries said nothing.
  std::string note() const {
    std::string t = text_;
    for (char& c : t)
      if (c == '\n' || c == '\r') c = ' ';
    while (!t.empty() && t.back() == ' ') t.pop_back();
    return t.empty() ? "" : " (" + t + ")";
  }

 private:
  std::string* outer_;
  std::string text_;
};

// Decoded 8-bit BGR (H, W, 3), or an empty Mat. The header is checked first, so nothing larger
// than core/limits.h allows is allocated, as long as read_image_header reads the size the
// codec library reads (the fuzz target image_decode holds it to that); `messages` collects
// what the libraries print.
cv::Mat decode_bgr(const uint8_t* bytes, size_t size, const CodecMessages& messages) {
  (void)kQuietCodecs;
  (void)messages;
  const ImageHeader header = read_image_header(bytes, size);  // throws: not an image, too large
  if (size > static_cast<size_t>(INT32_MAX)) throw BadExample(cat(size, " bytes is too large an image file"));
  cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(bytes));
  cv::Mat m;
  try {
    m = cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    return cv::Mat();
  }
  // An orientation (JPEG's EXIF, TIFF's tag 274) may turn the image a quarter; any other
  // difference is a header the library read unlike read_image_header, a bug to fix there.
  const bool as_declared = m.cols == header.width && m.rows == header.height;
  const bool turned = m.cols == header.height && m.rows == header.width;
  if (!m.empty() && !as_declared && !turned)
    throw BadExample(cat(header.format, " header declares a ", header.width, "x", header.height,
                         " image but decodes to ", m.cols, "x", m.rows));
  return m;
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
  CodecMessages messages;
  cv::Mat m = decode_bgr(bytes, size, messages);
  if (m.empty() || m.type() != CV_8UC3)
    throw BadExample(cat("cannot decode ", size, " bytes as an image (corrupt, truncated or "
                         "not an image)", messages.note()));
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
  CodecMessages messages;
  cv::Mat m = decode_bgr(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), messages);
  if (m.empty())
    throw BadExample(cat("cannot decode the file as an image (corrupt, truncated or not an image)",
                         messages.note()));
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
