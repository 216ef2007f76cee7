// Packed set tests: pack_image_folder then open_packed_dataset reads back every image with its
// label (PNG kept as is: exact; resized: the shorter side); damaged indexes and shards are
// errors naming the file; a corrupt record is a BadExample naming shard and source.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <filesystem>
#include <fstream>

#include "owt/core/error.h"
#include "owt/data/check.h"
#include "owt/data/image_codec.h"
#include "owt/data/pack.h"
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"
#include "support/expect_error.h"

namespace owt {
namespace {

using test::error_of;

namespace fs = std::filesystem;
using test::RgbImages;

#define SKIP_WITHOUT_OPENCV() \
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV"

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(PackedDataset, PackKeepingBytesReadsBackExactly) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  RgbImages train = test::make_rgb_images(10, 12, 18, 3, 1), val = test::make_rgb_images(4, 12, 18, 3, 2);
  test::write_image_folder(dir.file("src"), "train", train, ".png");
  test::write_image_folder(dir.file("src"), "val", val, ".png");
  PackOptions opt;
  opt.shorter = 0;       // keep the PNG bytes
  opt.shard_bytes = 1500;  // several shards
  opt.threads = 2;
  PackSummary s = pack_image_folder(dir.file("src"), dir.file("packed"), opt);
  EXPECT_EQ(s.images, 14);
  EXPECT_EQ(s.skipped, 0);
  EXPECT_GT(s.shards, 2);
  EXPECT_EQ(s.splits, (std::vector<std::string>{"train", "val"}));
  auto ds = open_dataset("packed", dir.file("packed"), "train");
  auto folder = open_dataset("folder", dir.file("src"), "train");
  ASSERT_EQ(ds->size(), 10);
  EXPECT_EQ(ds->class_names(), folder->class_names());
  EXPECT_EQ(ds->example_shape(), (Shape{3, 12, 18}));  // one size: fixed
  Image a, b;
  for (int64_t i = 0; i < ds->size(); ++i) {
    EXPECT_EQ(ds->label(i), folder->label(i));
    ds->read_image(i, a);
    folder->read_image(i, b);
    EXPECT_EQ(a.pixels, b.pixels) << ds->source(i);
  }
  EXPECT_EQ(open_dataset("packed", dir.file("packed"), "test")->size(), 4);  // test finds val
  EXPECT_EQ(detect_format(dir.file("packed")), "packed");
  for (const auto& e : fs::directory_iterator(dir.file("packed")))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

// `owt data pack` and `owt data check` draw their bars from these callbacks: every split
// reports its own files, never going back, and ends at its total.
TEST(PackedDataset, PackAndCheckReportProgressUpToTheirTotals) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  test::write_image_folder(dir.file("src"), "train", test::make_rgb_images(150, 8, 8, 3, 1), ".png");
  test::write_image_folder(dir.file("src"), "val", test::make_rgb_images(5, 8, 8, 3, 2), ".png");
  PackOptions opt;
  opt.threads = 1;  // chunks of 64 files: 64, 128, 150 for train
  std::vector<std::tuple<std::string, int64_t, int64_t>> calls;
  opt.progress = [&](const std::string& split, int64_t done, int64_t total) {
    calls.emplace_back(split, done, total);
  };
  pack_image_folder(dir.file("src"), dir.file("packed"), opt);
  using Call = std::tuple<std::string, int64_t, int64_t>;
  EXPECT_EQ(calls, (std::vector<Call>{{"train", 64, 150}, {"train", 128, 150}, {"train", 150, 150},
                                      {"val", 5, 5}}));

  auto data = open_dataset("packed", dir.file("packed"), "train");
  for (int threads : {1, 2}) {
    std::vector<int64_t> done;
    CheckReport r = check_dataset(*data, "train", threads, [&](int64_t d) { done.push_back(d); });
    EXPECT_EQ(r.examples, 150);
    ASSERT_FALSE(done.empty());
    EXPECT_TRUE(std::is_sorted(done.begin(), done.end()));
    EXPECT_GT(done.front(), 0);
    EXPECT_EQ(done.back(), 150);
    if (threads == 1) {
      EXPECT_EQ(done.size(), 151u);  // each example, then the closing call
    }
  }
}

TEST(PackedDataset, PackResizesToTheShorterSide) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  RgbImages train = test::make_rgb_images(4, 40, 60, 2, 1);
  test::write_image_folder(dir.file("src"), "train", train, ".jpg");
  PackOptions opt;
  opt.shorter = 20;
  pack_image_folder(dir.file("src"), dir.file("packed"), opt);
  auto ds = open_dataset("packed", dir.file("packed"), "train");
  EXPECT_EQ(ds->example_shape(), (Shape{3, 20, 30}));
  Image img;
  ds->read_image(0, img);
  EXPECT_EQ(img.h, 20);
  EXPECT_EQ(img.w, 30);
}

TEST(PackedDataset, UnreadableSourcesAreSkippedOrStrictErrors) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  test::write_image_folder(dir.file("src"), "train", test::make_rgb_images(4, 8, 8, 2, 1), ".png");
  dir.write("src/train/class_01/broken.jpg", "not a jpeg at all");
  testing::internal::CaptureStderr();
  PackSummary s = pack_image_folder(dir.file("src"), dir.file("packed"), PackOptions{});
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(s.images, 4);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_NE(err.find("broken.jpg"), std::string::npos) << err;
  PackOptions strict;
  strict.strict = true;
  std::string msg = error_of([&] { pack_image_folder(dir.file("src"), dir.file("strict"), strict); });
  EXPECT_NE(msg.find("broken.jpg"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir.file("strict/train.owtpack")));
}

TEST(PackedDataset, DamagedIndexOrShardIsAnErrorNamingTheFile) {
  SKIP_WITHOUT_OPENCV();
  test::TempDir dir;
  test::write_image_folder(dir.file("src"), "train", test::make_rgb_images(6, 8, 8, 2, 1), ".png");
  PackOptions opt;
  opt.shorter = 0;
  pack_image_folder(dir.file("src"), dir.file("p"), opt);
  const std::string index = dir.file("p/train.owtpack"), shard = dir.file("p/train-00000.owtshard");
  const std::string good_index = slurp(index), good_shard = slurp(shard);

  test::write_bytes(index, good_index.substr(0, good_index.size() - 20), false);
  std::string msg = error_of([&] { open_dataset("packed", dir.file("p"), "train"); });
  EXPECT_NE(msg.find(index), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  std::string bad_magic = good_index;
  bad_magic[0] = 'X';
  test::write_bytes(index, bad_magic, false);
  msg = error_of([&] { open_dataset("packed", dir.file("p"), "train"); });
  EXPECT_NE(msg.find("not a packed owt index"), std::string::npos) << msg;

  std::string bad_version = good_index;
  bad_version[8] = 9;
  test::write_bytes(index, bad_version, false);
  msg = error_of([&] { open_dataset("packed", dir.file("p"), "train"); });
  EXPECT_NE(msg.find("version 9"), std::string::npos) << msg;

  test::write_bytes(index, good_index, false);
  test::write_bytes(shard, good_shard.substr(0, good_shard.size() - 10), false);
  msg = error_of([&] { open_dataset("packed", dir.file("p"), "train"); });
  EXPECT_NE(msg.find(shard), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated shard"), std::string::npos) << msg;

  // Same length, garbage bytes in the middle of a record: opening works, that record is bad.
  std::string garbled = good_shard;
  for (size_t k = 8; k < 60; ++k) garbled[k] = 'z';
  test::write_bytes(shard, garbled, false);
  auto ds = open_dataset("packed", dir.file("p"), "train");
  Image img;
  try {
    ds->read_image(0, img);
    ADD_FAILURE() << "a garbled record decoded";
  } catch (const BadExample& e) {
    EXPECT_NE(std::string(e.what()).find(shard), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("img_0000.png"), std::string::npos) << e.what();
  }
  ds->read_image(1, img);  // the others still read
}

}  // namespace
}  // namespace owt
