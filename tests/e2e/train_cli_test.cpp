// End to end through the CLI: `owt train` on a generated IDX set learns (loss falls, accuracy
// rises), leaves the run directory the README describes, and `owt eval` reproduces its final numbers;
// `precision: bf16` learns on a CPU with AVX512_BF16 and is refused in one line without it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "owt/backend/backend.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

double field(const std::string& json_line, const std::string& key) {
  size_t at = json_line.find("\"" + key + "\": ");
  EXPECT_NE(at, std::string::npos) << key << " missing in " << json_line;
  return at == std::string::npos ? 0 : std::stod(json_line.substr(at + key.size() + 4));
}

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 512, 12, 12, 4, 1, true);
    write_idx_dataset(data_, "t10k", 128, 12, 12, 4, 2, false);
    model_ = dir_.write("tiny.yaml", tiny_model_yaml(data_));
  }
  TempDir dir_;
  std::string data_, model_;
};

TEST_F(TrainCli, LearnsAndWritesTheRunDirectory) {
  std::string run = dir_.file("run");
  CliResult r = run_owt({"train", model_, "--out", run, "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("test top-1"), std::string::npos) << r.out;

  EXPECT_TRUE(fs::exists(run + "/config.yaml"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/last.safetensors"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/best.safetensors"));
  EXPECT_NE(read_text(run + "/config.yaml").find("conv1"), std::string::npos);

  std::vector<std::string> lines = lines_of(read_text(run + "/metrics.jsonl"));
  ASSERT_EQ(lines.size(), 6u);  // train + eval per epoch, 3 epochs
  for (const auto& key : {"kind", "epoch", "step", "loss", "top1", "top5", "images_per_s", "comm_bytes"})
    EXPECT_NE(lines[0].find(std::string("\"") + key + "\""), std::string::npos) << key;
  EXPECT_NE(lines[0].find("\"kind\": \"train\""), std::string::npos);
  EXPECT_NE(lines[1].find("\"kind\": \"eval\""), std::string::npos);
  double first_loss = field(lines[0], "loss"), last_loss = field(lines[4], "loss");
  EXPECT_LT(last_loss, 0.6 * first_loss) << "training loss did not fall";
  EXPECT_GT(field(lines[5], "top1"), 0.9) << "the synthetic classes are easy to separate";
  EXPECT_EQ(field(lines[5], "step"), 3 * 512 / 16);
}

TEST_F(TrainCli, Bf16LearnsOnTheCpuOrIsRefusedInOneLine) {
  const std::string model = dir_.write("tiny_bf16.yaml", read_text(model_) + "precision: bf16\n");
  // oneDNN honours DNNL_MAX_CPU_ISA: below AVX512_BF16 the CPU has no bf16 kernels for owt.
  setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
  const std::string refused_run = dir_.file("refused");
  CliResult no = run_owt({"train", model, "--out", refused_run, "--threads", "1"});
  unsetenv("DNNL_MAX_CPU_ISA");
  EXPECT_NE(no.exit_code, 0);
  EXPECT_EQ(lines_of(no.err).size(), 1u) << no.err;
  EXPECT_NE(no.err.find("tiny_bf16.yaml: precision bf16 on the CPU needs AVX512_BF16"), std::string::npos)
      << no.err;
  EXPECT_FALSE(fs::exists(refused_run)) << "nothing half-written";
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512_BF16 here: the refusal is all there is to test";

  const std::string bf16 = dir_.file("bf16"), fp32 = dir_.file("fp32");
  CliResult r = run_owt({"train", model, "--out", bf16, "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(run_owt({"train", model_, "--out", fp32, "--threads", "1", "--max-steps", "32"}).exit_code, 0);
  std::vector<std::string> lines = lines_of(read_text(bf16 + "/metrics.jsonl"));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_LT(field(lines[4], "loss"), 0.6 * field(lines[0], "loss")) << "training loss did not fall";
  EXPECT_GT(field(lines[5], "top1"), 0.9);
  // The same seed and schedule in fp32 for the first epoch (32 steps): only bf16 rounding differs.
  const double fp32_loss = field(lines_of(read_text(fp32 + "/metrics.jsonl"))[0], "loss");
  EXPECT_NE(field(lines[0], "loss"), fp32_loss);
  EXPECT_NEAR(field(lines[0], "loss"), fp32_loss, 0.05 * fp32_loss);
}

TEST_F(TrainCli, EvalOfTheCheckpointMatchesTheLastEpoch) {
  std::string run = dir_.file("run");
  ASSERT_EQ(run_owt({"train", model_, "--out", run, "--epochs", "1", "--threads", "1"}).exit_code, 0);
  CliResult r = run_owt({"eval", model_, "--checkpoint", run + "/checkpoints/last.safetensors",
                         "--json", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = lines_of(read_text(run + "/metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NEAR(field(r.out, "top1"), field(lines[1], "top1"), 1e-6);
  EXPECT_NEAR(field(r.out, "loss"), field(lines[1], "loss"), 1e-4);
  EXPECT_EQ(field(r.out, "examples"), 128);
}

TEST_F(TrainCli, SameSeedGivesTheSameRunAndMaxStepsStopsEarly) {
  std::string a = dir_.file("a"), b = dir_.file("b");
  for (const auto& run : {a, b})
    ASSERT_EQ(run_owt({"train", model_, "--out", run, "--max-steps", "5", "--threads", "1"}).exit_code, 0);
  std::vector<std::string> la = lines_of(read_text(a + "/metrics.jsonl"));
  std::vector<std::string> lb = lines_of(read_text(b + "/metrics.jsonl"));
  ASSERT_EQ(la.size(), 2u);
  EXPECT_EQ(field(la[0], "step"), 5);
  EXPECT_EQ(field(la[0], "loss"), field(lb[0], "loss"));
  EXPECT_EQ(read_text(a + "/checkpoints/last.safetensors"), read_text(b + "/checkpoints/last.safetensors"));
}

TEST(Cli, HelpListsEveryTrainFlagWithDefaults) {
  CliResult r = run_owt({"train", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const auto& flag : {"--data", "--epochs", "--max-steps", "--batch", "--lr", "--seed", "--out",
                           "--threads", "--device", "--parallel"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_NE(r.out.find("{owt,dp}=owt"), std::string::npos) << "defaults are shown: " << r.out;
  EXPECT_NE(r.out.find("--seed INT=-1"), std::string::npos) << "defaults are shown: " << r.out;
  EXPECT_EQ(run_owt({"--help"}).exit_code, 0);
  EXPECT_EQ(run_owt({"eval", "--help"}).exit_code, 0);
}

}  // namespace
}  // namespace owt::test
