// `owt predict` on image files after a short training run, and `data.labels` (training on a
// subset of the classes, as the README's fine-tuning example does).
#include <gtest/gtest.h>

#include <filesystem>

#include "owt/core/safetensors.h"
#include "owt/data/image_codec.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

class PredictCli : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 512, 12, 12, 4, 1, false);
    write_idx_dataset(data_, "t10k", 64, 12, 12, 4, 2, false);
    model_ = dir_.write("tiny.yaml", tiny_model_yaml(data_, 3, 32));
  }
  TempDir dir_;
  std::string data_, model_;
};

TEST_F(PredictCli, NamesTheRightClassOfEasyImages) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV: no image decoding";
  std::string run = dir_.file("run");
  ASSERT_EQ(run_owt({"train", model_, "--out", run, "--no-progress"}).exit_code, 0);
  // Fresh examples of classes 0..3 from the generator, as grey PNG files.
  SyntheticIdx s = make_synthetic_idx(8, 12, 12, 4, 99);
  std::vector<std::string> args{"predict", model_, "--checkpoint", run + "/checkpoints/last.safetensors",
                                "--top", "2"};
  for (int i = 0; i < 8; ++i) {
    std::string path = dir_.file("img" + std::to_string(i) + ".png");
    write_bytes(path, encode_image(s.pixels.data() + i * 144, 12, 12, 1, ".png"), false);
    args.push_back(path);
  }
  CliResult r = run_owt(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int right = 0;
  for (int i = 0; i < 8; ++i) {
    size_t at = r.out.find("img" + std::to_string(i) + ".png\n");
    ASSERT_NE(at, std::string::npos) << r.out;
    size_t first = r.out.find("1. ", at);
    right += r.out.compare(first + 3, 1, std::to_string(s.labels[i])) == 0;
  }
  EXPECT_GE(right, 7) << r.out;
  EXPECT_NE(r.out.find("%"), std::string::npos);
  // A file that is not an image is one clear error naming it.
  std::string junk = dir_.write("junk.png", "not a png");
  r = run_owt({"predict", model_, "--checkpoint", run + "/checkpoints/last.safetensors", junk});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("junk.png"), std::string::npos) << r.err;
}

TEST_F(PredictCli, DataLabelsTrainsOnASubsetAndKeepsTheNames) {
  std::string text = tiny_model_yaml(data_, 1, 32);
  text.replace(text.find("mean:"), 5, "labels: [3, 1], mean:");
  text.replace(text.find("classes: 4"), 10, "classes: 2");
  text.replace(text.find("outputs: 4,"), 11, "outputs: 2,");
  std::string model = dir_.write("two.yaml", text), run = dir_.file("run");
  CliResult r = run_owt({"train", model, "--out", run, "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 512 examples, labels i % 4: 256 carry label 3 or 1 -> 8 steps of 32.
  EXPECT_NE(read_text(run + "/metrics.jsonl").find("\"step\": 8,"), std::string::npos);
  StFile f = read_safetensors(run + "/checkpoints/last.safetensors");
  EXPECT_EQ(f.metadata.at("class_names"), "3\n1");
  text.replace(text.find("labels: [3, 1]"), 14, "labels: [3, 9]");
  r = run_owt({"train", dir_.write("bad.yaml", text), "--out", dir_.file("bad")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("label 9"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace owt::test

namespace owt::test {
namespace {

TEST_F(PredictCli, TenViewEvaluationAveragesTheCrops) {
  std::string text = tiny_model_yaml(data_, 3, 32);
  text.replace(text.find("input: [1, 12, 12]"), 18, "input: [1, 10, 10]");
  text.replace(text.find("std: [0.3]}"), 11, "std: [0.3], augment: {crop: 10, test_views: 10}}");
  std::string model = dir_.write("crop.yaml", text), run = dir_.file("run");
  ASSERT_EQ(run_owt({"train", model, "--out", run, "--no-progress"}).exit_code, 0);
  std::string ck = run + "/checkpoints/last.safetensors";
  CliResult one = run_owt({"eval", model, "--checkpoint", ck, "--views", "1", "--json"});
  CliResult ten = run_owt({"eval", model, "--checkpoint", ck, "--json"});  // test_views: 10
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(ten.exit_code, 0) << ten.err;
  auto field = [](const std::string& json, const std::string& key) {
    return std::stod(json.substr(json.find("\"" + key + "\": ") + key.size() + 4));
  };
  // (The synthetic classes are blob positions, so mirrored views look like other classes:
  // the 10-view score is lower here. evaluate_views_test.cpp checks the averaging itself.)
  EXPECT_EQ(field(ten.out, "examples"), 64);
  EXPECT_NE(field(ten.out, "loss"), field(one.out, "loss")) << "the views were not averaged";
  // The centre view alone is the one-view evaluation of the training run.
  std::string metrics = read_text(run + "/metrics.jsonl");
  size_t last_eval = metrics.rfind("\"kind\": \"eval\"");
  EXPECT_NEAR(field(metrics.substr(last_eval), "loss"), field(one.out, "loss"), 1e-4);
  CliResult bad = run_owt({"eval", model_, "--checkpoint", ck, "--views", "10"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("crop"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace owt::test
