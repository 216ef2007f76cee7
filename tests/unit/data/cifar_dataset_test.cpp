// CIFAR binary reader tests: CIFAR-10 and CIFAR-100 files generated here read back with the
// right labels and exact pixels; truncated files, missing files and bad labels are errors.
#include <gtest/gtest.h>

#include "owt/core/error.h"
#include "owt/data/dataset.h"
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"
#include "support/expect_error.h"

namespace owt {
namespace {

using test::error_of;

using test::RgbImages;

void expect_same(const Dataset& ds, const RgbImages& ref) {
  ASSERT_EQ(ds.size(), ref.n);
  ASSERT_EQ(ds.example_shape(), (Shape{3, 32, 32}));
  std::vector<float> x(3 * 32 * 32);
  for (int i = 0; i < ref.n; ++i) {
    EXPECT_EQ(ds.label(i), ref.labels[i]) << i;
    ds.read(i, x.data());
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p)
        ASSERT_EQ(x[c * 1024 + p], ref.image(i)[p * 3 + c] / 255.0f) << i << " " << c << " " << p;
  }
}

TEST(CifarDataset, Cifar10RoundTrip) {
  test::TempDir dir;
  RgbImages a = test::make_rgb_images(7, 32, 32, 10, 1), b = test::make_rgb_images(5, 32, 32, 10, 2);
  test::write_bytes(dir.file("data_batch_1.bin"), test::cifar_bytes(a, 1), false);
  test::write_bytes(dir.file("data_batch_2.bin"), test::cifar_bytes(b, 1), false);
  test::write_bytes(dir.file("test_batch.bin"), test::cifar_bytes(b, 1), false);
  dir.write("batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
  auto train = open_dataset("cifar10", dir.path(), "train");
  ASSERT_EQ(train->size(), 12);
  EXPECT_EQ(train->classes(), 10);
  EXPECT_EQ(train->class_names()[3], "cat");
  std::vector<float> x(3072);
  train->read(7, x.data());  // first record of the second batch
  EXPECT_EQ(x[1024], b.image(0)[1] / 255.0f);
  expect_same(*open_dataset("cifar10", dir.path(), "test"), b);
}

TEST(CifarDataset, Cifar100UsesTheFineLabelAndFindsTheTarballFolder) {
  test::TempDir dir;
  RgbImages a = test::make_rgb_images(130, 32, 32, 100, 3);
  test::write_bytes(dir.file("cifar-100-binary/train.bin"), test::cifar_bytes(a, 2), false);
  test::write_bytes(dir.file("cifar-100-binary/test.bin"), test::cifar_bytes(a, 2), false);
  auto ds = open_dataset("cifar100", dir.path(), "train");
  EXPECT_EQ(ds->classes(), 100);
  EXPECT_EQ(ds->label(99), 99);
  expect_same(*ds, a);
}

TEST(CifarDataset, TruncatedFileIsAnErrorNamingIt) {
  test::TempDir dir;
  std::string bytes = test::cifar_bytes(test::make_rgb_images(3, 32, 32, 10, 1), 1);
  test::write_bytes(dir.file("test_batch.bin"), bytes.substr(0, bytes.size() - 100), false);
  std::string msg = error_of([&] { open_dataset("cifar10", dir.path(), "test"); });
  EXPECT_NE(msg.find(dir.file("test_batch.bin")), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(CifarDataset, MissingFilesAndGapsAndBadLabels) {
  test::TempDir dir;
  std::string msg = error_of([&] { open_dataset("cifar10", dir.path(), "train"); });
  EXPECT_NE(msg.find("data_batch_1.bin"), std::string::npos) << msg;
  std::string ok = test::cifar_bytes(test::make_rgb_images(2, 32, 32, 10, 1), 1);
  test::write_bytes(dir.file("data_batch_1.bin"), ok, false);
  test::write_bytes(dir.file("data_batch_3.bin"), ok, false);
  msg = error_of([&] { open_dataset("cifar10", dir.path(), "train"); });
  EXPECT_NE(msg.find("data_batch_2.bin is missing"), std::string::npos) << msg;
  std::string bad = ok;
  bad[0] = 17;  // label 17 in CIFAR-10
  test::write_bytes(dir.file("test_batch.bin"), bad, false);
  msg = error_of([&] { open_dataset("cifar10", dir.path(), "test"); });
  EXPECT_NE(msg.find("label 17"), std::string::npos) << msg;
}

TEST(CifarDataset, DetectFormat) {
  test::TempDir dir;
  test::write_cifar_dataset(dir.file("c10"), 10, 4, 4, 1);
  test::write_cifar_dataset(dir.file("c100"), 100, 4, 4, 1);
  test::write_idx_dataset(dir.file("idx"), "train", 4, 4, 4, 2, 1, true);
  EXPECT_EQ(detect_format(dir.file("c10")), "cifar10");
  EXPECT_EQ(detect_format(dir.file("c100")), "cifar100");
  EXPECT_EQ(detect_format(dir.file("idx")), "idx");
  EXPECT_EQ(detect_format(dir.path()), "");
}

}  // namespace
}  // namespace owt
