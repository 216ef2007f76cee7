// read_image_header (issue 16, item 2): the size every format declares, read without decoding;
// images larger than core/limits.h allows, or larger than their file could hold, are refused
// before decoding. Item 6: the codec libraries print nothing on stderr (their text goes into
// owt's message), and a folder of class folders is a data set of one split.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "owt/core/error.h"
#include "owt/data/check.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"
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

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

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

TEST(ImageCodec, LibraryMessagesStayOffStderr) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  std::vector<uint8_t> rgb(16 * 16 * 3, 100);
  // A PNG whose image data is damaged (CRC errors): libpng would print "libpng error: ...".
  std::string png = encode_image(rgb.data(), 16, 16, 3, ".png");
  for (size_t i = 41; i + 12 < png.size(); ++i) png[i] ^= 0x5a;
  // A JPEG whose second half is zeros: libjpeg would print "Corrupt JPEG data: ...".
  std::string jpg = encode_image(rgb.data(), 16, 16, 3, ".jpg");
  for (size_t i = jpg.size() / 2; i + 2 < jpg.size(); ++i) jpg[i] = 0;
  for (const std::string* bytes : {&png, &jpg}) {
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
  }
  // Ordinary stderr output still goes through, in order.
  testing::internal::CaptureStderr();
  std::fprintf(stderr, "first\n");
  warn("second");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "first\nowt: warning: second\n");
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
