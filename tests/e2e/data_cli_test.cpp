// End to end through the CLI: `owt data check` on every format (counts, sizes, unreadable
// files, exit code), `owt data pack`, and one epoch of models/cifar10.yaml on a generated
// CIFAR-10 set.
#include <gtest/gtest.h>

#include <filesystem>

#include "owt/data/image_codec.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(DataCli, CheckIdxAndCifar) {
  TempDir dir;
  write_idx_dataset(dir.file("idx"), "train", 40, 12, 12, 4, 1, true);
  write_idx_dataset(dir.file("idx"), "t10k", 8, 12, 12, 4, 2, false);
  CliResult r = run_owt({"data", "check", dir.file("idx")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "format idx")) << r.out;
  EXPECT_TRUE(has(r.out, "train: 40 examples, 4 classes")) << r.out;
  EXPECT_TRUE(has(r.out, "0  0: 10")) << r.out;  // class 0 has 10 examples
  EXPECT_TRUE(has(r.out, "image sizes (HxW): 12x12 (40)")) << r.out;
  EXPECT_TRUE(has(r.out, "test: 8 examples")) << r.out;

  write_cifar_dataset(dir.file("c10"), 10, 30, 10, 1);
  r = run_owt({"data", "check", dir.file("c10")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "format cifar10")) << r.out;
  EXPECT_TRUE(has(r.out, "train: 30 examples, 10 classes")) << r.out;
  EXPECT_TRUE(has(r.out, "32x32 (30)")) << r.out;

  write_cifar_dataset(dir.file("c100"), 100, 200, 100, 1);
  r = run_owt({"data", "check", dir.file("c100")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "format cifar100")) << r.out;
  EXPECT_TRUE(has(r.out, "examples per class: min 2")) << r.out;  // > 50 classes: a summary

  write_bytes(dir.file("c10/test_batch.bin"), "short", false);
  r = run_owt({"data", "check", dir.file("c10")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, dir.file("c10/test_batch.bin"))) << r.err;
}

TEST(DataCli, CheckAndPackAnImageFolder) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  TempDir dir;
  write_image_folder(dir.file("img"), "train", make_rgb_images(12, 24, 30, 3, 1), "mixed");
  write_image_folder(dir.file("img"), "val", make_rgb_images(6, 24, 30, 3, 2), ".png");
  CliResult r = run_owt({"data", "check", dir.file("img"), "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "format folder")) << r.out;
  EXPECT_TRUE(has(r.out, "train: 12 examples, 3 classes")) << r.out;
  EXPECT_TRUE(has(r.out, "1  class_01: 4")) << r.out;
  EXPECT_TRUE(has(r.out, "24x30 (12)")) << r.out;
  EXPECT_TRUE(has(r.out, "val: 6 examples")) << r.out;

  r = run_owt({"data", "pack", dir.file("img"), dir.file("packed"), "--size", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "18 images (0 skipped) of 2 splits")) << r.out;
  r = run_owt({"data", "check", dir.file("packed")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "format packed")) << r.out;
  EXPECT_TRUE(has(r.out, "16x20 (12)")) << r.out;  // shorter side 16

  dir.write("img/train/class_02/broken.jpg", "\xFF\xD8\xFF garbage");
  r = run_owt({"data", "check", dir.file("img")});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(has(r.out, "unreadable: 1")) << r.out;
  EXPECT_TRUE(has(r.out, dir.file("img/train/class_02/broken.jpg"))) << r.out;
  std::filesystem::create_directories(dir.file("img/train/class_03"));
  r = run_owt({"data", "check", dir.file("img")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "empty class folder")) << r.err;
}

TEST(DataCli, OneEpochOfCifar10Model) {
  TempDir dir;
  write_cifar_dataset(dir.file("c10"), 10, 256, 64, 3);
  const std::string model = std::string(OWT_SOURCE_DIR) + "/models/cifar10.yaml";
  CliResult r = run_owt({"train", model, "--data", dir.file("c10"), "--epochs", "1", "--batch",
                         "32", "--out", dir.file("run"), "--threads", "2", "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "trained cifar10 for 8 steps")) << r.out;
  std::string metrics = read_text(dir.file("run/metrics.jsonl"));
  EXPECT_TRUE(has(metrics, "\"kind\": \"eval\"")) << metrics;
}

}  // namespace
}  // namespace owt::test
