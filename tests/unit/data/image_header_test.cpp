// read_image_header (issue 16, item 2): the size every format declares, read without decoding;
// images larger than core/limits.h allows, or larger than their file could hold, are refused
// before decoding. Item 6: the codec libraries print nothing on stderr (their text goes into
// owt's message), and a folder of class folders is a data set of one split.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "owt/core/error.h"
#include "owt/data/check.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"
#include "support/byte_strings.h"
#include "support/expect_error.h"
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"

namespace owt {
namespace {

ImageHeader header_of(const std::string& bytes) {
  return read_image_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string bad_example(const std::string& bytes) {
  try {
    header_of(bytes);
  } catch (const BadExample& e) {
    return e.what();
  }
  ADD_FAILURE() << "no BadExample";
  return "";
}

using test::be32;
using test::le16;
using test::le32;

// A PNG signature and IHDR claiming w x h, padded to `size` bytes.
std::string png_header(uint32_t w, uint32_t h, size_t size = 64) {
  std::string s = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(w) + be32(h);
  s.resize(std::max(size, s.size()), '\0');
  return s;
}

TEST(ImageHeader, EveryFormatOpenCvWritesReportsItsSize) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  std::vector<uint8_t> rgb(37 * 23 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  for (const char* ext : {".png", ".jpg", ".bmp", ".ppm", ".tif", ".webp"}) {
    const std::string bytes = encode_image(rgb.data(), 23, 37, 3, ext);
    ImageHeader h = header_of(bytes);
    EXPECT_EQ(h.width, 37) << ext;
    EXPECT_EQ(h.height, 23) << ext;
  }
  const std::string grey = encode_image(rgb.data(), 23, 37, 1, ".pgm");
  EXPECT_EQ(header_of(grey).format, "PNM");
  EXPECT_EQ(header_of(grey).width, 37);
}

TEST(ImageHeader, HandMadeHeaders) {
  EXPECT_EQ(header_of(png_header(5, 7)).height, 7);
  // PNM: comments and any whitespace between the numbers.
  ImageHeader p = header_of("P6\n# made by hand\n 12\t34\n255\n");
  EXPECT_EQ(p.format, "PNM");
  EXPECT_EQ(p.width, 12);
  EXPECT_EQ(p.height, 34);
  // BMP: a negative height is a top-down bitmap.
  std::string bmp = "BM" + std::string(12, '\0') + std::string("\x28\0\0\0", 4) +
                    std::string("\x03\0\0\0", 4) + std::string("\xfe\xff\xff\xff", 4);
  bmp.resize(64, '\0');
  EXPECT_EQ(header_of(bmp).height, 2);
  EXPECT_EQ(header_of(bmp).width, 3);
}

TEST(ImageHeader, HugeOrForgedSizesAreRefusedBeforeDecoding) {
  // A 64-byte PNG claiming 2^20 x 2^20 pixels (3 TiB of floats).
  std::string msg = bad_example(png_header(1 << 20, 1 << 20));
  EXPECT_NE(msg.find("1048576x1048576"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at most 32768 pixels a side"), std::string::npos) << msg;
  msg = bad_example(png_header(10000, 10000));
  EXPECT_NE(msg.find("67108864 pixels in all"), std::string::npos) << msg;
  // Within the limits, but more pixels than 64 bytes can hold.
  msg = bad_example(png_header(8192, 8192));
  EXPECT_NE(msg.find("in 64 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated or forged"), std::string::npos) << msg;
  EXPECT_NE(bad_example(png_header(0, 5)).find("0x5"), std::string::npos);
  EXPECT_NE(bad_example("P5 99999999999 1 255").find("9 digits"), std::string::npos);
  // Not an image at all, or a header cut short.
  EXPECT_NE(bad_example("GIF89a....").find("not an image owt reads"), std::string::npos);
  EXPECT_NE(bad_example("").find("not an image owt reads"), std::string::npos);
  EXPECT_NE(bad_example(std::string("\xff\xd8\xff\xe0\x00\x10JFIF", 10)).find("JPEG"), std::string::npos);
  EXPECT_NE(bad_example(png_header(5, 7).substr(0, 20)).find("truncated PNG"), std::string::npos);
  EXPECT_NE(bad_example(std::string("II*\0\xff\xff\xff\x00", 8)).find("TIFF"), std::string::npos);
  if (have_image_codec()) {
    Image img;
    const std::string forged = png_header(8192, 8192);
    EXPECT_THROW(decode_image(reinterpret_cast<const uint8_t*>(forged.data()), forged.size(), img),
                 BadExample);
    EXPECT_TRUE(img.pixels.empty());
  }
}

// One TIFF directory entry holding a SHORT.
std::string short_entry(uint16_t tag, uint16_t value) {
  return le16(tag) + le16(3) + le32(1) + le16(value) + le16(0);
}

// A little-endian TIFF of one directory of SHORT entries, then 64 zero bytes and no pixels.
std::string tiff_header(const std::vector<std::pair<uint16_t, uint16_t>>& entries) {
  std::string t = std::string("II*\0", 4) + le32(8) + le16(static_cast<uint16_t>(entries.size()));
  for (const auto& [tag, value] : entries) t += short_entry(tag, value);
  return t + le32(0) + std::string(64, '\0');
}

// An uncompressed w x h RGB TIFF (little-endian, one strip of `rows_per_strip` rows) whose
// directory ends with a second ImageWidth and ImageLength, repeat_w x repeat_h, as a forged
// file might.
std::string tiff_rgb(uint16_t w, uint16_t h, uint32_t rows_per_strip, uint16_t repeat_w,
                     uint16_t repeat_h) {
  const uint16_t entries = 11;
  const uint32_t bits_at = 8 + 2 + 12 * entries + 4, pixels_at = bits_at + 6;
  auto entry = [](uint16_t tag, uint16_t type, uint32_t count, uint32_t value) {
    const bool one_short = type == 3 && count == 1;
    return le16(tag) + le16(type) + le32(count) +
           (one_short ? le16(static_cast<uint16_t>(value)) + le16(0) : le32(value));
  };
  std::string t = std::string("II*\0", 4) + le32(8) + le16(entries) + entry(256, 3, 1, w) +
                  entry(257, 3, 1, h) + entry(258, 3, 3, bits_at) + entry(259, 3, 1, 1) +
                  entry(262, 3, 1, 2) + entry(273, 4, 1, pixels_at) + entry(277, 3, 1, 3) +
                  entry(278, 4, 1, rows_per_strip) + entry(279, 4, 1, 3u * w * h) +
                  entry(256, 3, 1, repeat_w) + entry(257, 3, 1, repeat_h) + le32(0);
  t += le16(8) + le16(8) + le16(8);
  for (size_t i = 0; i < 3u * w * h; ++i) t += static_cast<char>(i * 11);
  return t;
}

// What read_image_header says must be what the codec library decodes, or a forged header can
// make the library allocate far more than the limits allow (fuzzing found these three).
TEST(ImageHeader, SizesAreReadAsTheCodecLibrariesReadThem) {
  std::vector<std::pair<std::string, std::string>> cases;  // (what, bytes) of 37x23 images
  // libtiff keeps the first of a repeated tag: a later, smaller ImageWidth must not count.
  cases.emplace_back("TIFF", tiff_rgb(37, 23, 23, 2, 2));
  // OpenCV's PNM reader consumes the byte after a number, so "37#23" is 37 then 23.
  std::string pnm = "P6 37#23 255\n";
  pnm.resize(pnm.size() + 37 * 23 * 3, '\x40');
  cases.emplace_back("PNM", pnm);
  // libjpeg skips FF 00 as stray bytes (it is no marker): here they are followed by two more
  // stray bytes that, read as a segment length, would jump over the whole image to a forged
  // 2x2 frame header at the end.
  if (have_image_codec()) {
    std::vector<uint8_t> rgb(37 * 23 * 3, 90);
    const std::string jpg = encode_image(rgb.data(), 23, 37, 3, ".jpg");
    const std::string body = jpg.substr(2);
    const std::string jump = {static_cast<char>((body.size() + 2) >> 8),
                              static_cast<char>(body.size() + 2)};
    ASSERT_EQ(jump.find('\xff'), std::string::npos);
    const std::string forged_sof(
        "\xff\xc0\x00\x11\x08\x00\x02\x00\x02\x03\x01\x11\x00\x02\x11\x01\x03\x11\x01", 19);
    cases.emplace_back("JPEG",
                       jpg.substr(0, 2) + std::string("\xff\x00", 2) + jump + body + forged_sof);
  }
  for (const auto& [what, bytes] : cases) {
    const ImageHeader h = header_of(bytes);
    EXPECT_EQ(h.format, what);
    EXPECT_EQ(h.width, 37) << what;
    EXPECT_EQ(h.height, 23) << what;
    if (!have_image_codec()) continue;
    Image img;
    decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), img);
    EXPECT_EQ(img.w, 37) << what;
    EXPECT_EQ(img.h, 23) << what;
  }
  // The repeat that is ignored cannot make a huge first size pass either.
  EXPECT_NE(bad_example(tiff_header({{256, 30000}, {257, 30000}, {256, 2}, {257, 2}}))
                .find("30000x30000"),
            std::string::npos);
}

// OpenCV decodes a TIFF a strip (or tile) at a time into a buffer of the declared strip size,
// so a forged RowsPerStrip (18693 rows of a 5-row image: 76 MB from 400 bytes) is refused,
// while strips a little past the image, as writers with a fixed strip height make, are read.
TEST(ImageHeader, TiffStripsAndTilesAreBoundedByTheImage) {
  const std::string msg = bad_example(tiff_rgb(1018, 5, 18693, 1018, 5));
  EXPECT_NE(msg.find("of up to 19029474 pixels in a 1018x5 image"), std::string::npos) << msg;
  // A lone TileWidth makes libtiff's tiles TileWidth x RowsPerStrip: 65282 x 260 for 6x3.
  const std::string lone_tile_width = tiff_header({{256, 6}, {257, 3}, {278, 260}, {322, 65282}});
  EXPECT_NE(bad_example(lone_tile_width).find("of up to 16973320 pixels"), std::string::npos);
  for (uint32_t rows : {5u, 64u, 0xFFFFFFFFu}) {  // 2^32-1: one strip
    const std::string bytes = tiff_rgb(37, 5, rows, 37, 5);
    EXPECT_EQ(header_of(bytes).height, 5) << rows;
    if (!have_image_codec()) continue;
    Image img;
    decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), img);
    EXPECT_EQ(img.w * img.h, 37 * 5) << rows;
  }
}

TEST(ImageCodec, LibraryMessagesStayOffStderr) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  std::vector<uint8_t> rgb(16 * 16 * 3, 100);
  // A PNG whose image data is damaged (CRC errors): libpng would print "libpng error: ...".
  std::string png = encode_image(rgb.data(), 16, 16, 3, ".png");
  for (size_t i = 41; i + 12 < png.size(); ++i) png[i] ^= 0x5a;
  // A JPEG whose second half is zeros: libjpeg would print "Corrupt JPEG data: ...".
  std::string jpg = encode_image(rgb.data(), 16, 16, 3, ".jpg");
  for (size_t i = jpg.size() / 2; i + 2 < jpg.size(); ++i) jpg[i] = 0;
  // A TIFF cut short in its pixels: OpenCV writes "imdecode_(''): can't read data" to std::cerr.
  std::string tif = tiff_rgb(37, 23, 23, 37, 23);
  tif.resize(tif.size() - 100);
  for (const std::string* bytes : {&png, &jpg, &tif}) {
    testing::internal::CaptureStderr();
    std::string what;
    Image img;
    try {
      decode_image(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), img);
    } catch (const BadExample& e) {
      what = e.what();
    }
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "") << "the codec printed on stderr";
    if (bytes == &png) {
      EXPECT_NE(what.find("cannot decode"), std::string::npos) << what;
      EXPECT_NE(what.find("(libpng"), std::string::npos) << "libpng's text belongs in owt's message: " << what;
    }
    if (bytes == &tif) {
      EXPECT_NE(what.find("can't read data"), std::string::npos) << what;
    }
  }
  // Ordinary stderr output still goes through, in order, std::cerr's too.
  testing::internal::CaptureStderr();
  std::fprintf(stderr, "first\n");
  warn("second");
  std::cerr << "third" << std::endl;
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "first\nowt: warning: second\nthird\n");
}

TEST(ImageFolder, AFolderOfClassFoldersIsOneSplit) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  test::TempDir dir;
  // torchvision's ImageFolder root: <root>/<class>/<image>, no train/ or val/.
  test::write_image_folder(dir.file("root"), ".", test::make_rgb_images(9, 8, 8, 3, 1), ".png");
  EXPECT_EQ(detect_format(dir.file("root")), "folder");
  EXPECT_EQ(dataset_splits("folder", dir.file("root")), (std::vector<std::string>{kWholeFolder}));
  auto data = open_dataset("folder", dir.file("root"), kWholeFolder);
  EXPECT_EQ(data->size(), 9);
  EXPECT_EQ(data->classes(), 3);
  // Training still needs train/ and val/ folders, and says so.
  test::expect_error([&] { open_dataset("folder", dir.file("root"), "train"); },
                     {dir.file("root") + "/train", "expected"});
  // A folder with neither images nor class folders is not a data set.
  std::filesystem::create_directories(dir.file("empty/sub"));
  EXPECT_EQ(detect_format(dir.file("empty")), "");
}

TEST(ImageFolder, ClassFolderNamesArePrintable) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  test::TempDir dir;
  test::write_image_folder(dir.file("d"), "train", test::make_rgb_images(2, 8, 8, 1, 1), ".png");
  std::filesystem::rename(dir.file("d/train/class_00"), dir.file("d/train/a\nb"));
  test::expect_error([&] { open_dataset("folder", dir.file("d"), "train"); }, {"control character"});
}

}  // namespace
}  // namespace owt
