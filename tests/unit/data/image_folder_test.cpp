// Image folder tests: JPEG and PNG files written here read back with labels by sorted class
// name (PNG exact, JPEG close); non-image, corrupt and truncated files are skipped with a
// warning and counted (errors when strict); empty classes and sets are errors naming the path.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "owt/core/error.h"
#include "owt/data/image_codec.h"
#include "owt/data/loader.h"
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"
#include "support/expect_error.h"

namespace owt {
namespace {

using test::error_of;

using test::RgbImages;

#define SKIP_WITHOUT_OPENCV() \
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV"

// Largest |decoded - reference| over image i, in 8-bit units.
float max_diff(const Image& img, const RgbImages& ref, int i) {
  float worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < ref.h * ref.w; ++p)
      worst = std::max(worst, 255.0f * std::abs(img.pixels[c * ref.h * ref.w + p] -
                                                  ref.image(i)[p * 3 + c] / 255.0f));
  return worst;
}

TEST(ImageFolder, ReadsJpegAndPngWithLabelsBySortedClassName) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  RgbImages ref = test::make_rgb_images(12, 20, 28, 3, 5);
  test::write_image_folder(dir.path(), "train", ref, "mixed");
  auto ds = open_dataset("folder", dir.path(), "train");
  ASSERT_EQ(ds->size(), 12);
  EXPECT_EQ(ds->classes(), 3);
  EXPECT_EQ(ds->example_shape(), (Shape{3, 0, 0}));
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"class_00", "class_01", "class_02"}));
  Image img;
  for (int64_t j = 0; j < ds->size(); ++j) {
    // Files are sorted by class then name: find which generated image this is.
    const std::string src = ds->source(j);
    int i = std::stoi(src.substr(src.find("img_") + 4, 4));
    EXPECT_EQ(ds->label(j), ref.labels[i]);
    ds->read_image(j, img);
    ASSERT_EQ(img.c, 3);
    ASSERT_EQ(img.h, 20);
    ASSERT_EQ(img.w, 28);
    if (src.substr(src.size() - 4) == ".png") EXPECT_EQ(max_diff(img, ref, i), 0.0f) << src;
    else EXPECT_LE(max_diff(img, ref, i), 40.0f) << src;  // JPEG q95 on noisy pixels
  }
}

TEST(ImageFolder, ValUsesTheTrainClassIndices) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  test::write_image_folder(dir.path(), "train", test::make_rgb_images(6, 8, 8, 3, 1), ".png");
  RgbImages val = test::make_rgb_images(3, 8, 8, 3, 2);
  val.labels = {2, 2, 2};  // only class_02 in val: its label must still be 2
  test::write_image_folder(dir.path(), "val", val, ".png");
  auto ds = open_dataset("folder", dir.path(), "test");
  EXPECT_EQ(ds->classes(), 3);
  EXPECT_EQ(ds->label(0), 2);
  std::filesystem::create_directories(dir.file("val/zebra"));
  dir.write("val/zebra/a.png", "x");
  std::string msg = error_of([&] { open_dataset("folder", dir.path(), "test"); });
  EXPECT_NE(msg.find("zebra"), std::string::npos) << msg;
}

TEST(ImageFolder, EmptyClassAndEmptySetAreErrorsNamingThePath) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  test::write_image_folder(dir.path(), "train", test::make_rgb_images(4, 8, 8, 2, 1), ".png");
  std::filesystem::create_directories(dir.file("train/class_09"));
  std::string msg = error_of([&] { open_dataset("folder", dir.path(), "train"); });
  EXPECT_NE(msg.find(dir.file("train/class_09")), std::string::npos) << msg;
  EXPECT_NE(msg.find("empty class"), std::string::npos) << msg;
  std::filesystem::create_directories(dir.file("empty/train"));
  msg = error_of([&] { open_dataset("folder", dir.file("empty"), "train"); });
  EXPECT_NE(msg.find("empty data set"), std::string::npos) << msg;
  msg = error_of([&] { open_dataset("folder", dir.file("nothing"), "train"); });
  EXPECT_NE(msg.find(dir.file("nothing")), std::string::npos) << msg;
}

// A folder of 8 good images in two classes plus a corrupt, a truncated and a non-image file.
struct BadFolder {
  test::TempDir dir;
  RgbImages ref = test::make_rgb_images(8, 16, 16, 2, 3);
  BadFolder() {
    test::write_image_folder(dir.path(), "train", ref, ".png");
    std::string jpg = encode_image(ref.image(0), 16, 16, 3, ".jpg");
    test::write_bytes(dir.file("train/class_00/zz_truncated.jpg"), jpg.substr(0, jpg.size() / 2), false);
    dir.write("train/class_01/zz_corrupt.png", "\x89PNG\r\n\x1a\n this is not really a png");
    dir.write("train/class_01/notes.txt", "hello");
  }
};

TEST(ImageFolder, BadFilesAreSkippedWithAWarningAndCounted) {
  SKIP_WITHOUT_OPENCV();
  BadFolder f;
  testing::internal::CaptureStderr();
  auto ds = open_dataset("folder", f.dir.path(), "train");
  EXPECT_EQ(ds->size(), 10);  // 8 + truncated + corrupt; notes.txt left out
  EXPECT_EQ(ds->skipped_at_open(), 1);
  TransformSpec spec;
  spec.crop = 16;
  Transform t(spec, ds->example_shape(), 1);
  LoaderSpec ls;
  ls.batch = 10;
  ls.drop_last = false;
  ls.threads = 3;
  BatchLoader loader(*ds, t, ls);
  std::vector<float> x(10 * 3 * 16 * 16);
  std::vector<int32_t> labels(10);
  loader.load(0, 0, x.data(), labels.data());
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("notes.txt"), std::string::npos) << err;
  EXPECT_NE(err.find("zz_truncated.jpg"), std::string::npos) << err;
  EXPECT_NE(err.find("zz_corrupt.png"), std::string::npos) << err;
  EXPECT_EQ(loader.skipped(), 3);
  // The rows keep the labels of the epoch order (a same-class image stands in for a bad one).
  const std::vector<int64_t>& ord = loader.order(0);
  for (int r = 0; r < 10; ++r) EXPECT_EQ(labels[r], ds->label(ord[r]));
}

TEST(ImageFolder, StrictMakesBadFilesErrors) {
  SKIP_WITHOUT_OPENCV();
  BadFolder f;
  std::string msg = error_of([&] { open_dataset("folder", f.dir.path(), "train", DatasetOptions{true}); });
  EXPECT_NE(msg.find("notes.txt"), std::string::npos) << msg;
  std::filesystem::remove(f.dir.file("train/class_01/notes.txt"));
  auto ds = open_dataset("folder", f.dir.path(), "train", DatasetOptions{true});
  TransformSpec spec;
  spec.crop = 16;
  Transform t(spec, ds->example_shape(), 1);
  LoaderSpec ls;
  ls.batch = 9;
  ls.shuffle = false;
  ls.strict = true;
  BatchLoader loader(*ds, t, ls);
  std::vector<float> x(9 * 3 * 16 * 16);
  std::vector<int32_t> labels(9);
  msg = error_of([&] { loader.load(0, 0, x.data(), labels.data()); });
  EXPECT_NE(msg.find("/zz_"), std::string::npos) << msg;  // whichever bad file a thread met first
  EXPECT_NE(msg.find("strict"), std::string::npos) << msg;
}

}  // namespace
}  // namespace owt
