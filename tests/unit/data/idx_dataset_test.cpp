// IDX reader tests: exact round trip of raw and gzip files, and one clear owt::Error naming
// the file for every kind of bad input (missing, wrong magic, truncated, count mismatch).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "owt/core/error.h"
#include "owt/data/dataset.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"
#include "support/expect_error.h"

namespace owt {
namespace {

using test::error_of;

using test::idx_images_bytes;
using test::idx_images_path;
using test::idx_labels_bytes;
using test::idx_labels_path;
using test::write_bytes;

// Runs `f`, expects an owt::Error and returns its message.
#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

void check_round_trip(bool gz) {
  test::TempDir dir;
  test::SyntheticIdx d = test::make_synthetic_idx(23, 5, 7, 4, 11);
  test::write_idx_dataset(dir.path(), "t10k", 23, 5, 7, 4, 11, gz);
  auto ds = open_idx_dataset(dir.path(), "test");
  ASSERT_EQ(ds->size(), 23);
  EXPECT_EQ(ds->example_shape(), (Shape{1, 5, 7}));
  EXPECT_EQ(ds->classes(), 4);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"0", "1", "2", "3"}));
  std::vector<float> x(35);
  for (int i = 0; i < 23; ++i) {
    EXPECT_EQ(ds->label(i), d.labels[i]);
    ds->read(i, x.data());
    for (int k = 0; k < 35; ++k) ASSERT_EQ(x[k], d.pixels[i * 35 + k] / 255.0f) << i << " " << k;
  }
}

TEST(IdxDataset, RoundTripRaw) { check_round_trip(false); }
TEST(IdxDataset, RoundTripGzip) { check_round_trip(true); }

TEST(IdxDataset, ExtremePixelsMapToZeroAndOne) {
  test::TempDir dir;
  write_bytes(idx_images_path(dir.path(), "train", false), idx_images_bytes(1, 1, 3, {0, 255, 51}), false);
  write_bytes(idx_labels_path(dir.path(), "train", false), idx_labels_bytes(1, {9}), false);
  auto ds = open_dataset("idx", dir.path(), "train");
  float x[3];
  ds->read(0, x);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_FLOAT_EQ(x[2], 0.2f);
  EXPECT_EQ(ds->classes(), 10);  // max label + 1
}

TEST(IdxDataset, PrefersPlainFileOverGzip) {
  test::TempDir dir;
  write_bytes(idx_images_path(dir.path(), "train", false), idx_images_bytes(1, 1, 1, {255}), false);
  write_bytes(idx_images_path(dir.path(), "train", true), idx_images_bytes(1, 1, 1, {0}), true);
  write_bytes(idx_labels_path(dir.path(), "train", true), idx_labels_bytes(1, {0}), true);
  auto ds = open_idx_dataset(dir.path(), "train");
  float x;
  ds->read(0, &x);
  EXPECT_EQ(x, 1.0f);
}

TEST(IdxDataset, MissingFileNamesBothCandidates) {
  test::TempDir dir;
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
  EXPECT_HAS(msg, idx_images_path(dir.path(), "train", false));
  EXPECT_HAS(msg, idx_images_path(dir.path(), "train", true));
  EXPECT_HAS(msg, "missing");
}

TEST(IdxDataset, MissingLabelsFile) {
  test::TempDir dir;
  write_bytes(idx_images_path(dir.path(), "t10k", true), idx_images_bytes(1, 1, 1, {0}), true);
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "test"); });
  EXPECT_HAS(msg, idx_labels_path(dir.path(), "t10k", false));
  EXPECT_HAS(msg, idx_labels_path(dir.path(), "t10k", true));
}

TEST(IdxDataset, WrongMagicShowsExpectedAndFoundInHex) {
  test::TempDir dir;
  std::string images = idx_images_path(dir.path(), "train", false);
  // A labels file where the images file should be.
  write_bytes(images, idx_images_bytes(2, 2, 2, std::vector<uint8_t>(8), 0x00000801), false);
  write_bytes(idx_labels_path(dir.path(), "train", false), idx_labels_bytes(2, {0, 1}), false);
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
  EXPECT_HAS(msg, images);
  EXPECT_HAS(msg, "magic");
  EXPECT_HAS(msg, "0x00000803");
  EXPECT_HAS(msg, "0x00000801");
}

TEST(IdxDataset, TruncatedImagesFile) {
  for (bool gz : {false, true}) {
    test::TempDir dir;
    std::string images = idx_images_path(dir.path(), "train", gz);
    write_bytes(images, idx_images_bytes(3, 2, 2, std::vector<uint8_t>(10)), gz);  // 12 expected
    write_bytes(idx_labels_path(dir.path(), "train", gz), idx_labels_bytes(3, {0, 1, 2}), gz);
    std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
    EXPECT_HAS(msg, images);
    EXPECT_HAS(msg, "truncated");
    EXPECT_HAS(msg, "expected 12 bytes of pixel data");
    EXPECT_HAS(msg, "found 10");
  }
}

TEST(IdxDataset, TruncatedHeader) {
  test::TempDir dir;
  std::string images = idx_images_path(dir.path(), "train", false);
  write_bytes(images, idx_images_bytes(3, 2, 2, {}).substr(0, 10), false);
  write_bytes(idx_labels_path(dir.path(), "train", false), idx_labels_bytes(3, {0, 1, 2}), false);
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
  EXPECT_HAS(msg, images);
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "header");
}

TEST(IdxDataset, TruncatedGzipStream) {
  test::TempDir dir;
  std::string images = idx_images_path(dir.path(), "train", true);
  test::TempDir scratch;
  std::string whole = scratch.file("whole.gz");
  test::SyntheticIdx d = test::make_synthetic_idx(50, 8, 8, 3, 1);
  write_bytes(whole, idx_images_bytes(50, 8, 8, d.pixels), true);
  std::ifstream in(whole, std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(images, gz.substr(0, gz.size() / 2), false);  // cut the compressed stream
  write_bytes(idx_labels_path(dir.path(), "train", false), idx_labels_bytes(50, d.labels), false);
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
  EXPECT_HAS(msg, images);
  EXPECT_HAS(msg, "truncated gzip stream");
}

TEST(IdxDataset, TruncatedLabelsFile) {
  test::TempDir dir;
  std::string labels = idx_labels_path(dir.path(), "train", false);
  write_bytes(idx_images_path(dir.path(), "train", false), idx_images_bytes(3, 1, 1, {1, 2, 3}), false);
  write_bytes(labels, idx_labels_bytes(3, {0, 1}), false);
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
  EXPECT_HAS(msg, labels);
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "expected 3 bytes of label data, found 2");
}

TEST(IdxDataset, CountMismatchNamesBothFilesAndCounts) {
  test::TempDir dir;
  std::string images = idx_images_path(dir.path(), "train", false);
  std::string labels = idx_labels_path(dir.path(), "train", false);
  write_bytes(images, idx_images_bytes(3, 1, 1, {1, 2, 3}), false);
  write_bytes(labels, idx_labels_bytes(4, {0, 1, 0, 1}), false);
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "train"); });
  EXPECT_HAS(msg, images);
  EXPECT_HAS(msg, labels);
  EXPECT_HAS(msg, "3 images");
  EXPECT_HAS(msg, "4 labels");
}

TEST(IdxDataset, UnknownSplit) {
  test::TempDir dir;
  std::string msg = error_of([&] { open_idx_dataset(dir.path(), "valid"); });
  EXPECT_HAS(msg, dir.path());
  EXPECT_HAS(msg, "valid");
}

TEST(OpenDataset, UnknownFormatNamesItAndTheSupportedOnes) {
  test::TempDir dir;
  std::string msg = error_of([&] { open_dataset("cifarx", dir.path(), "train"); });
  EXPECT_HAS(msg, "cifarx");
  EXPECT_HAS(msg, dir.path());
  EXPECT_HAS(msg, "idx");
}

}  // namespace
}  // namespace owt
