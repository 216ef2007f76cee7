// Issue 16, items 2 and 3, for the data readers: a small file that claims a huge size is one
// clear error naming the file and the field, never an allocation of that size (IDX dimensions,
// CIFAR sizes and name files, packed-index counts and records, image headers and files), and no
// name read from a file (a packed index's shard, class and source names) can reach outside the
// data set's folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"
#include "owt/data/transform.h"
#include "support/byte_strings.h"
#include "support/expect_error.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt {
namespace {

namespace fs = std::filesystem;
using test::be32;
using test::expect_error;
using test::idx_images_bytes;
using test::idx_images_path;
using test::idx_labels_bytes;
using test::idx_labels_path;
using test::le32;
using test::le64;
using test::write_bytes;

// A file of `size` bytes that takes no disk space (for limits on a file's size).
std::string sparse_file(const std::string& path, uint64_t size) {
  { std::ofstream(path, std::ios::binary) << "x"; }
  fs::resize_file(path, size);
  return path;
}

// ---- IDX ------------------------------------------------------------------------------------

TEST(UntrustedIdx, A20ByteFileClaimingHugeImagesIsRefused) {
  for (bool gz : {false, true}) {
    test::TempDir dir;
    const std::string images = idx_images_path(dir.path(), "train", gz);
    // 20 bytes: magic, 2^32 - 1 images of 32767 x 32767 (2^61.9 bytes), 4 pixel bytes.
    write_bytes(images, be32(0x803) + be32(0xFFFFFFFF) + be32(32767) + be32(32767) + "abcd", gz);
    write_bytes(idx_labels_path(dir.path(), "train", gz), idx_labels_bytes(1, {0}), gz);
    expect_error([&] { open_idx_dataset(dir.path(), "train"); },
                 {images, "4294967295 images of 32767x32767", "bytes of pixel data", "at most 17179869184"});
  }
}

TEST(UntrustedIdx, ImageSidesAndCountsAreChecked) {
  test::TempDir dir;
  const std::string images = idx_images_path(dir.path(), "train", false);
  write_bytes(images, be32(0x803) + be32(1) + be32(40000) + be32(1) + "a", false);
  write_bytes(idx_labels_path(dir.path(), "train", false), idx_labels_bytes(1, {0}), false);
  expect_error([&] { open_idx_dataset(dir.path(), "train"); }, {images, "40000x1", "32768 pixels a side"});
  // A labels header that disagrees with the images is refused before either is read whole.
  write_bytes(images, idx_images_bytes(2, 1, 1, {1, 2}), false);
  const std::string labels = idx_labels_path(dir.path(), "train", false);
  write_bytes(labels, be32(0x801) + be32(0xFFFFFFFF), false);
  expect_error([&] { open_idx_dataset(dir.path(), "train"); }, {images, labels, "2 images", "4294967295 labels"});
  // A plain file longer than its header says: "oversized", counted from the file's size.
  write_bytes(labels, idx_labels_bytes(2, {0, 1, 1}), false);
  expect_error([&] { open_idx_dataset(dir.path(), "train"); }, {labels, "oversized", "expected 2", "found 3"});
  write_bytes(idx_labels_path(dir.path(), "train", true), idx_labels_bytes(2, {0, 1, 1}), true);
  fs::remove(labels);
  expect_error([&] { open_idx_dataset(dir.path(), "train"); }, {"oversized", "found more"});
}

// ---- CIFAR ----------------------------------------------------------------------------------

TEST(UntrustedCifar, SizesAreCheckedBeforeReading) {
  test::TempDir dir;
  // A sparse batch of 16 GiB + one record: refused from its size, nothing read.
  const std::string batch = sparse_file(dir.file("data_batch_1.bin"), limits::kCifarFileBytes + 3073);
  expect_error([&] { open_cifar_dataset(dir.path(), "train", 10); },
               {batch, "17179872257 bytes", "CIFAR batches of at most 17179869184"});
  fs::remove(batch);
  write_bytes(dir.file("data_batch_1.bin"), std::string(3073, '\1'), false);
  const std::string names = sparse_file(dir.file("batches.meta.txt"), limits::kNamesFileBytes + 1);
  expect_error([&] { open_cifar_dataset(dir.path(), "train", 10); },
               {names, "1048577 bytes", "class name files of at most 1048576"});
}

// ---- packed sets ----------------------------------------------------------------------------

std::string pstr(const std::string& s) { return le32(static_cast<uint32_t>(s.size())) + s; }

std::string index_bytes(uint32_t classes, uint32_t shards, uint64_t records, const std::string& body) {
  return std::string("OWTPACK1") + le32(1) + le32(classes) + le32(shards) + le64(records) + body;
}

std::string record(uint32_t shard, uint64_t offset, uint32_t size, uint32_t label, uint32_t h,
                   uint32_t w, const std::string& name) {
  return le32(shard) + le64(offset) + le32(size) + le32(label) + le32(h) + le32(w) + pstr(name);
}

class UntrustedPacked : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
    write_bytes(dir_.file("p/train-00000.owtshard"), "OWTSHRD1" + std::string(100, 'x'), false);
    write_bytes(dir_.file("secret.owtshard"), "OWTSHRD1" + std::string(100, 's'), false);
  }
  // Opens <dir>/p/train.owtpack holding `index` and returns the error message.
  void expect_refused(const std::string& index, const std::vector<std::string>& parts) {
    write_bytes(dir_.file("p/train.owtpack"), index, false);
    std::vector<std::string> all{dir_.file("p/train.owtpack")};
    all.insert(all.end(), parts.begin(), parts.end());
    expect_error([&] { open_packed_dataset(dir_.file("p"), "train"); }, all);
  }
  std::string good_record() { return record(0, 8, 50, 0, 2, 2, "cat/a.png"); }
  test::TempDir dir_;
};

TEST_F(UntrustedPacked, HugeCountsInATinyIndexAreRefused) {
  // 4 billion classes, shards or records declared in a few bytes.
  expect_refused(index_bytes(0xFFFFFFFF, 1, 1, "") + "OWTPEND1", {"class count 4294967295"});
  expect_refused(index_bytes(1000, 1, 1, pstr("cat")) + "OWTPEND1", {"truncated packed index", "1000 classes"});
  expect_refused(index_bytes(1, 0xFFFFFFFF, 1, pstr("cat")) + "OWTPEND1", {"truncated", "4294967295 shards"});
  expect_refused(index_bytes(1, 1, uint64_t{1} << 60, pstr("cat")) + "OWTPEND1",
                 {"truncated", "1152921504606846976 records"});
}

TEST_F(UntrustedPacked, RecordsAreBounded) {
  const std::string head = pstr("cat") + pstr("train-00000.owtshard");
  // An offset near 2^64 must not wrap around the shard-size check.
  expect_refused(index_bytes(1, 1, 1, head + record(0, ~uint64_t{0} - 7, 16, 0, 2, 2, "a.png")) + "OWTPEND1",
                 {"record 0", "truncated shard"});
  expect_refused(index_bytes(1, 1, 1, head + record(0, 8, 50, 0, 100000, 2, "a.png")) + "OWTPEND1",
                 {"record 0", "100000x2", "32768 pixels a side"});
  expect_refused(index_bytes(1, 1, 1, head + record(0, 8, 50, 0, 30000, 30000, "a.png")) + "OWTPEND1",
                 {"record 0", "30000x30000", "67108864 in all"});
  expect_refused(index_bytes(1, 1, 1, head + record(0, 8, 0x20000000, 0, 2, 2, "a.png")) + "OWTPEND1",
                 {"record 0", "536870912 bytes", "at most 268435456"});
  // The index file itself is bounded by its size before it is read.
  sparse_file(dir_.file("p/train.owtpack"), limits::kPackIndexBytes + 1);
  expect_error([&] { open_packed_dataset(dir_.file("p"), "train"); },
               {dir_.file("p/train.owtpack"), "4294967297 bytes", "at most 4294967296"});
}

TEST_F(UntrustedPacked, NamesFromTheIndexCannotLeaveItsFolder) {
  const std::string cat = pstr("cat");
  // Shard names are file names beside the index: no separator, no "..".
  expect_refused(index_bytes(1, 1, 1, cat + pstr("../secret.owtshard") + good_record()) + "OWTPEND1",
                 {"shard name 0", "plain file name"});
  expect_refused(index_bytes(1, 1, 1, cat + pstr(dir_.file("secret.owtshard")) + good_record()) + "OWTPEND1",
                 {"shard name 0", "plain file name"});
  expect_refused(index_bytes(1, 1, 1, cat + pstr("..") + good_record()) + "OWTPEND1", {"shard name 0"});
  // Class names are folder names, source names relative paths below the split folder.
  const std::string shard = pstr("train-00000.owtshard");
  expect_refused(index_bytes(1, 1, 1, pstr("../../etc") + shard + good_record()) + "OWTPEND1",
                 {"class name 0", "plain folder name"});
  expect_refused(index_bytes(1, 1, 1, pstr("a\nb") + shard + good_record()) + "OWTPEND1", {"class name 0"});
  expect_refused(index_bytes(1, 1, 1, cat + shard + record(0, 8, 50, 0, 2, 2, "../../x.png")) + "OWTPEND1",
                 {"record 0", "relative path below the split folder"});
  expect_refused(index_bytes(1, 1, 1, cat + shard + record(0, 8, 50, 0, 2, 2, "/etc/x.png")) + "OWTPEND1",
                 {"record 0", "relative path"});
  // The same index with plain names opens.
  write_bytes(dir_.file("p/train.owtpack"), index_bytes(1, 1, 1, cat + shard + good_record()) + "OWTPEND1", false);
  EXPECT_EQ(open_packed_dataset(dir_.file("p"), "train")->size(), 1);
}

// ---- images ---------------------------------------------------------------------------------

TEST(UntrustedImages, ImageFilesAreBoundedBeforeReading) {
  test::TempDir dir;
  const std::string big = sparse_file(dir.file("big.png"), limits::kImageFileBytes + 1);
  try {
    read_encoded_image(big);
    ADD_FAILURE() << "no error";
  } catch (const BadExample& e) {
    EXPECT_NE(std::string(e.what()).find("268435457 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_encoded_image(dir.path()), BadExample);  // a directory
  EXPECT_THROW(read_encoded_image("/dev/zero"), BadExample);  // endless
}

TEST(UntrustedImages, AnExtremeAspectRatioIsNotResizedToBillionsOfPixels) {
  TransformSpec spec;
  spec.resize = 256;
  spec.crop = 224;
  Transform tf(spec, Shape{3, 0, 0}, 1);
  Image thin;
  thin.resize(3, 2, 30000);  // within every image limit; resized: 256 x 3840000
  std::vector<float> out(3 * 224 * 224), scratch;
  try {
    tf.apply(thin, out.data(), 0, 0, true, scratch);
    ADD_FAILURE() << "no error";
  } catch (const BadExample& e) {
    EXPECT_NE(std::string(e.what()).find("2x30000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("256x3840000"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(scratch.empty());
}

}  // namespace
}  // namespace owt
