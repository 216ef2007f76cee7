// Bad input through the CLI: each case ends with one clear "owt: error:" line naming the file
// (and line), an exit code in 1..127 (no crash), and no run directory left behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 64, 12, 12, 4, 1, false);
    write_idx_dataset(data_, "t10k", 32, 12, 12, 4, 2, false);
  }
  // Runs `owt train` on `model_text`; expects a clean failure whose message contains `needles`.
  void expect_failure(const std::string& model_text, const std::vector<std::string>& needles) {
    std::string model = dir_.write("model.yaml", model_text), run = dir_.file("run");
    CliResult r = run_owt({"train", model, "--out", run, "--threads", "1"}, 60);
    EXPECT_GE(r.exit_code, 1) << r.err;
    EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("^owt: error: "))) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << n << " in " << r.err;
    EXPECT_FALSE(fs::exists(run)) << "a run directory was left behind";
  }
  std::string replace(std::string text, const std::string& from, const std::string& to) {
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  }
  TempDir dir_;
  std::string data_;
};

TEST_F(BadInput, TruncatedImages) {
  std::string path = idx_images_path(data_, "train", false);
  std::string bytes = read_text(path);
  write_bytes(path, bytes.substr(0, bytes.size() - 100), false);
  expect_failure(tiny_model_yaml(data_), {path, "expected"});
}

TEST_F(BadInput, WrongMagic) {
  std::string path = idx_labels_path(data_, "t10k", false);
  write_bytes(path, idx_labels_bytes(32, std::vector<uint8_t>(32, 1), 0x00000803), false);
  expect_failure(tiny_model_yaml(data_), {path, "magic"});
}

TEST_F(BadInput, LabelImageCountMismatch) {
  std::string path = idx_labels_path(data_, "train", false);
  write_bytes(path, idx_labels_bytes(60, std::vector<uint8_t>(60, 1)), false);
  expect_failure(tiny_model_yaml(data_), {path, "64", "60"});
}

TEST_F(BadInput, MissingDataDirectory) {
  expect_failure(tiny_model_yaml(dir_.file("nowhere")), {dir_.file("nowhere")});
}

TEST_F(BadInput, UnknownLayerType) {
  expect_failure(replace(tiny_model_yaml(data_), "type: relu}", "type: relux}"),
                 {"model.yaml:7:", "unknown layer type 'relux'", "conv"});
}

TEST_F(BadInput, MissingField) {
  expect_failure(replace(tiny_model_yaml(data_), "outputs: 32, ", ""),
                 {"model.yaml:9:", "layer 'fc1'", "outputs"});
}

TEST_F(BadInput, BadValue) {
  expect_failure(replace(tiny_model_yaml(data_), "rate: 0.25", "rate: lots"),
                 {"model.yaml:11:", "layer 'drop1'", "'rate'", "lots"});
}

TEST_F(BadInput, UnknownKey) {
  expect_failure(replace(tiny_model_yaml(data_), "filters: 8", "filters: 8, strides: 2"),
                 {"model.yaml:6:", "unknown key 'strides'"});
}

TEST_F(BadInput, WrongIndentation) {
  expect_failure(replace(tiny_model_yaml(data_), "classes: 4\n", "classes: 4\n   bad: 1\n"),
                 {"model.yaml:", "invalid YAML"});
}

TEST_F(BadInput, ShapesThatDoNotFit) {
  expect_failure(replace(tiny_model_yaml(data_), "size: 3, pad: 1", "size: 15"),
                 {"conv1", "does not fit"});
}

TEST_F(BadInput, ClassesDisagreeWithTheLastLayer) {
  expect_failure(replace(tiny_model_yaml(data_), "outputs: 4", "outputs: 5"),
                 {"model.yaml", "5 outputs", "classes: 4"});
}

TEST_F(BadInput, InputShapeDisagreesWithTheData) {
  expect_failure(replace(tiny_model_yaml(data_), "input: [1, 12, 12]", "input: [1, 28, 28]"),
                 {data_, "(1, 12, 12)", "(1, 28, 28)"});
}

TEST_F(BadInput, UnknownFlagAndMissingModel) {
  CliResult r = run_owt({"train", "/no/such/model.yaml"});
  EXPECT_GE(r.exit_code, 1);
  EXPECT_LT(r.exit_code, 128);
  EXPECT_NE(r.err.find("/no/such/model.yaml"), std::string::npos) << r.err;
  r = run_owt({"train", dir_.write("m.yaml", tiny_model_yaml(data_)), "--frobnicate"});
  EXPECT_GE(r.exit_code, 1);
  EXPECT_LT(r.exit_code, 128);
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace owt::test
