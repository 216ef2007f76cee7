// read_image_header: the format and size an encoded image declares, parsed from its first bytes
// with every read bounds-checked, so that an image is decoded (and its pixels allocated) only
// when it is one of the formats owt reads and its size is within core/limits.h. Compiled with
// and without OpenCV.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "owt/core/limits.h"
#include "owt/data/image_codec.h"

namespace owt {
namespace {

uint32_t be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t le16(const uint8_t* p) { return (uint32_t(p[1]) << 8) | p[0]; }
uint32_t be32(const uint8_t* p) { return (be16(p) << 16) | be16(p + 2); }
uint32_t le32(const uint8_t* p) { return (le16(p + 2) << 16) | le16(p); }

[[noreturn]] void bad(const std::string& why) { throw BadExample(why); }

// A TIFF strip or tile may always hold this many pixels, however small the image.
constexpr int64_t kTiffBlockSlack = int64_t{1} << 20;

ImageHeader png(const uint8_t* b, size_t n) {
  // Signature, then the IHDR chunk: length 13, "IHDR", width, height (big-endian).
  if (n < 24 || std::memcmp(b + 12, "IHDR", 4) != 0) bad("truncated PNG header (no IHDR chunk)");
  return {"PNG", be32(b + 16), be32(b + 20)};
}

ImageHeader jpeg(const uint8_t* b, size_t n) {
  size_t at = 2;  // after SOI (FF D8)
  while (at + 4 <= n) {
    while (at < n && b[at] != 0xFF) ++at;  // stray bytes between segments, as libjpeg skips
    if (at + 4 > n) break;
    while (at + 1 < n && b[at + 1] == 0xFF) ++at;  // fill bytes
    if (at + 4 > n) break;
    const uint8_t marker = b[at + 1];
    // No length: SOI, TEM, RSTn; and FF 00, which libjpeg skips as two stray bytes.
    if (marker == 0xD8 || marker == 0x01 || marker == 0x00 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += 2;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) bad("corrupt JPEG: image data before the frame header");
    const uint32_t len = be16(b + at + 2);
    if (len < 2) bad(cat("corrupt JPEG: segment length ", len, " at byte ", at));
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                     marker != 0xCC;
    if (sof) {
      if (len < 7 || at + 9 > n) bad("truncated JPEG frame header");
      return {"JPEG", be16(b + at + 7), be16(b + at + 5)};  // precision, height, width
    }
    at += 2 + len;
  }
  bad("truncated JPEG: no frame header");
}

ImageHeader bmp(const uint8_t* b, size_t n) {
  if (n < 26) bad("truncated BMP header");
  const uint32_t dib = le32(b + 14);
  if (dib == 12) return {"BMP", le16(b + 18), le16(b + 20)};  // OS/2 BITMAPCOREHEADER
  if (dib < 40) bad(cat("BMP: unknown header size ", dib));
  const int64_t w = static_cast<int32_t>(le32(b + 18)), h = static_cast<int32_t>(le32(b + 22));
  if (w < 0) bad(cat("BMP: negative width ", w));
  return {"BMP", w, h < 0 ? -h : h};  // a negative height is a top-down bitmap
}

ImageHeader pnm(const uint8_t* b, size_t n) {
  // "P1".."P6", then width and height as decimal text separated by whitespace and comments.
  size_t at = 2;
  int64_t dims[2] = {0, 0};
  for (int64_t& d : dims) {
    for (;;) {
      while (at < n && (b[at] == ' ' || (b[at] >= '\t' && b[at] <= '\r'))) ++at;
      if (at < n && b[at] == '#') {
        while (at < n && b[at] != '\n' && b[at] != '\r') ++at;
        continue;
      }
      break;
    }
    if (at >= n || b[at] < '0' || b[at] > '9') bad("corrupt PNM header (expected width and height)");
    for (int digits = 0; at < n && b[at] >= '0' && b[at] <= '9'; ++at)
      if (++digits > 9) bad("PNM: a dimension has more than 9 digits");
      else d = d * 10 + (b[at] - '0');
    ++at;  // OpenCV's reader consumes the byte that ends a number: "3#4" is 3 then 4, no comment
  }
  return {"PNM", dims[0], dims[1]};
}

ImageHeader tiff(const uint8_t* b, size_t n) {
  const bool little = b[0] == 'I';
  auto u16 = [&](size_t at) { return little ? le16(b + at) : be16(b + at); };
  auto u32 = [&](size_t at) { return little ? le32(b + at) : be32(b + at); };
  if (n < 8) bad("truncated TIFF header");
  const uint64_t ifd = u32(4);
  if (ifd < 8 || ifd + 2 > n) bad(cat("TIFF: first directory at byte ", ifd, " is outside the file"));
  // The tags read here, and their values in the first directory (-1: absent).
  enum { kWidth, kLength, kBits, kSamples, kRowsPerStrip, kTileWidth, kTileLength, kTags };
  static const uint32_t kTagIds[kTags] = {256, 257, 258, 277, 278, 322, 323};
  int64_t v[kTags] = {-1, -1, -1, -1, -1, -1, -1};
  const uint32_t entries = u16(ifd);
  for (uint32_t e = 0; e < entries; ++e) {
    const uint64_t at = ifd + 2 + 12 * uint64_t{e};
    if (at + 12 > n) bad("truncated TIFF directory");
    const uint32_t tag = u16(at), type = u16(at + 2);
    const int t = static_cast<int>(std::find(kTagIds, kTagIds + kTags, tag) - kTagIds);
    // libtiff ignores every repeat of a tag in a directory (it keeps the first), so must we: a
    // small second ImageWidth would otherwise hide the large first one that libtiff allocates.
    if (t == kTags || v[t] >= 0) continue;
    if (type != 3 && type != 4)
      bad(cat("TIFF: tag ", tag, " has type ", type, " (expected SHORT or LONG)"));
    // SHORT (3) and LONG (4) values of count 1 sit in the entry; for BitsPerSample with more
    // SHORTs than fit there, the entry holds the offset of the first.
    uint64_t value_at = at + 8;
    if (t == kBits && type == 3 && u32(at + 4) > 2) {
      value_at = u32(at + 8);
      if (value_at + 2 > n) bad("TIFF: BitsPerSample outside the file");
    }
    v[t] = type == 3 ? u16(value_at) : u32(value_at);
  }
  const int64_t width = v[kWidth], height = v[kLength];
  const int64_t bits = v[kBits] < 0 ? 8 : v[kBits], samples = v[kSamples] < 0 ? 1 : v[kSamples];
  if (width < 0 || height < 0) bad("TIFF: no ImageWidth or ImageLength in the first directory");
  if (bits < 1 || bits > 16) bad(cat("TIFF: ", bits, " bits per sample (owt reads up to 16)"));
  if (samples < 1 || samples > 4) bad(cat("TIFF: ", samples, " samples per pixel (owt reads 1 to 4)"));
  // OpenCV decodes a strip or tile at a time into a buffer of its declared size, which the
  // file may set far beyond the image (RowsPerStrip 18693 for 5 rows), so bound it too. Which
  // tags make the block depends on which are present (libtiff takes a lone TileWidth with
  // RowsPerStrip for the height), so bound the largest block any of them could make.
  if (width <= limits::kImageSide && height <= limits::kImageSide) {
    auto or_image = [](int64_t declared, int64_t image) {  // absent, 0 and 2^32-1: the image's
      if (declared <= 0 || declared == 0xFFFFFFFF) return image;
      return std::min<int64_t>(declared, int64_t{1} << 31);
    };
    const int64_t block = std::max(width, or_image(v[kTileWidth], width)) *
                          std::max({height, or_image(v[kRowsPerStrip], height),
                                    or_image(v[kTileLength], height)});
    const int64_t most = std::max(2 * width * height, kTiffBlockSlack);
    if (block > most)
      bad(cat("TIFF: strips or tiles of up to ", block, " pixels in a ", width, "x", height,
              " image; owt reads strips and tiles of at most twice the image or ",
              kTiffBlockSlack, " pixels"));
  }
  return {"TIFF", width, height};
}

ImageHeader webp(const uint8_t* b, size_t n) {
  if (n < 30) bad("truncated WebP header");
  const uint8_t* c = b + 12;  // the first chunk
  if (std::memcmp(c, "VP8 ", 4) == 0) {
    if (b[23] != 0x9D || b[24] != 0x01 || b[25] != 0x2A) bad("corrupt WebP (VP8 start code)");
    return {"WebP", le16(b + 26) & 0x3FFF, le16(b + 28) & 0x3FFF};
  }
  if (std::memcmp(c, "VP8L", 4) == 0) {
    if (b[20] != 0x2F) bad("corrupt WebP (VP8L signature)");
    const uint32_t bits = le32(b + 21);
    return {"WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (std::memcmp(c, "VP8X", 4) == 0) {
    const int64_t w = 1 + (b[24] | (b[25] << 8) | (b[26] << 16));
    const int64_t h = 1 + (b[27] | (b[28] << 8) | (b[29] << 16));
    return {"WebP", w, h};
  }
  bad("WebP: unknown first chunk");
}

}  // namespace

ImageHeader read_image_header(const uint8_t* b, size_t n) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  ImageHeader h;
  if (n >= 8 && std::memcmp(b, kPng, 8) == 0) h = png(b, n);
  else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) h = jpeg(b, n);
  else if (n >= 2 && b[0] == 'B' && b[1] == 'M') h = bmp(b, n);
  else if (n >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' &&
           (b[2] == ' ' || (b[2] >= '\t' && b[2] <= '\r') || b[2] == '#'))
    h = pnm(b, n);
  else if (n >= 4 && (std::memcmp(b, "II*\0", 4) == 0 || std::memcmp(b, "MM\0*", 4) == 0)) h = tiff(b, n);
  else if (n >= 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) h = webp(b, n);
  else
    throw BadExample(cat("not an image owt reads (", n, " bytes that are no JPEG, PNG, BMP, PNM, "
                         "TIFF or WebP)"));
  if (h.width <= 0 || h.height <= 0)
    throw BadExample(cat(h.format, " header declares a ", h.width, "x", h.height, " image"));
  if (h.width > limits::kImageSide || h.height > limits::kImageSide ||
      h.width * h.height > limits::kImagePixels)
    throw BadExample(cat(h.format, " header declares a ", h.width, "x", h.height,
                         " image; owt reads images of at most ", limits::kImageSide,
                         " pixels a side and ", limits::kImagePixels, " pixels in all"));
  if (h.width * h.height > static_cast<int64_t>(n) * limits::kImagePixelsPerByte)
    throw BadExample(cat(h.format, " header declares a ", h.width, "x", h.height, " image in ", n,
                         " bytes, more than any real image compresses to (truncated or forged)"));
  return h;
}

std::string read_encoded_image(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw BadExample("cannot open for reading");
  if (!S_ISREG(st.st_mode)) throw BadExample("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limits::kImageFileBytes)
    throw BadExample(cat("the file is ", st.st_size, " bytes; image files are at most ",
                         limits::kImageFileBytes, " bytes"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadExample("cannot open for reading");
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) throw BadExample("read failed");
  return bytes;
}

}  // namespace owt
