// End to end through the CLI on `data.format: synthetic`: a small model learns the generated
// classes (test loss below chance's, top-1 far above it) with no data set on disk, and --data
// on a synthetic model file is refused before a run directory exists.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "support/cli_runner.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

// 10 classes of 1x12x12 examples; 2000 to train on, 500 to test.
const char* kModel = R"(name: synth
input: [1, 12, 12]
classes: 10
data: {format: synthetic, train_examples: 2000, test_examples: 500, noise: 0.3, shift: 2,
       mean: [0.5], std: [0.3]}
layers:
  - {name: conv1, type: conv, filters: 8, size: 3, pad: 1}
  - {name: relu1, type: relu}
  - {name: pool1, type: maxpool, size: 2, stride: 2}
  - {name: fc1, type: linear, outputs: 10}
  - {name: loss, type: softmax_cross_entropy}
solver: {lr: 0.05, momentum: 0.9, batch: 32, epochs: 2}
)";

// The number after "key": in the last line of `text` that has it.
double last_value(const std::string& text, const std::string& key) {
  const size_t at = text.rfind("\"" + key + "\": ");
  EXPECT_NE(at, std::string::npos) << key << " missing in " << text;
  return at == std::string::npos ? NAN : std::stod(text.substr(at + key.size() + 4));
}

TEST(SyntheticCli, ASmallModelLearnsTheGeneratedClasses) {
  TempDir dir;
  const std::string model = dir.write("synth.yaml", kModel), run = dir.file("run");
  CliResult r = run_owt({"train", model, "--out", run, "--threads", "1", "--no-progress"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string metrics = read_text(run + "/metrics.jsonl");
  const double loss = last_value(metrics, "loss"), top1 = last_value(metrics, "top1");
  EXPECT_LT(loss, 0.5 * std::log(10.0)) << "test loss not below half of chance's ln 10\n" << metrics;
  EXPECT_GT(top1, 0.6) << "test top-1 (chance: 0.1)\n" << metrics;
  // The run's config.yaml (the model as run) is a model file again: it plans and trains.
  r = run_owt({"plan", run + "/config.yaml", "--workers", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_owt({"train", run + "/config.yaml", "--out", dir.file("again"), "--max-steps", "1", "--no-progress"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(SyntheticCli, DataDirOnASyntheticModelIsRefused) {
  TempDir dir;
  const std::string model = dir.write("synth.yaml", kModel), run = dir.file("run");
  CliResult r = run_owt({"train", model, "--data", dir.path(), "--out", run}, 60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("synthetic"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--data"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(run));
}

}  // namespace
}  // namespace owt::test
