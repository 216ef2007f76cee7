// Checkpoints through the CLI: exact resume (bitwise at K = 1), --save-every retention,
// fine-tuning with a new head, frozen layers, and clear errors for damaged checkpoints.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "owt/core/safetensors.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

std::string replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

class CheckpointCli : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 512, 12, 12, 4, 1, false);
    write_idx_dataset(data_, "t10k", 64, 12, 12, 4, 2, false);
    model_ = dir_.write("tiny.yaml", tiny_model_yaml(data_, 3, 64));  // 8 steps per epoch
  }
  std::vector<std::string> train(const std::string& model, const std::string& out,
                                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"train", model, "--out", out, "--threads", "1", "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = run_owt(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return {r.out, r.err};
  }
  TempDir dir_;
  std::string data_, model_;
};

TEST_F(CheckpointCli, ResumeEqualsTheUninterruptedRunBitwise) {
  std::string whole = dir_.file("whole"), parts = dir_.file("parts");
  train(model_, whole, {"--max-steps", "13"});
  train(model_, parts, {"--max-steps", "5"});   // stops inside epoch 1
  std::vector<std::string> r = train(model_, parts, {"--resume", parts, "--max-steps", "13"});
  EXPECT_NE(r[1].find("resuming from"), std::string::npos) << r[1];
  std::string a = read_text(whole + "/checkpoints/last.safetensors");
  std::string b = read_text(parts + "/checkpoints/last.safetensors");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "weights or optimizer state differ after resume";
  StFile f = read_safetensors(parts + "/checkpoints/last.safetensors");
  EXPECT_EQ(f.metadata.at("step"), "13");
  EXPECT_NE(f.find("optim.fc1.weight.momentum_buffer"), nullptr);
  EXPECT_NE(f.metadata.at("model").find("conv1"), std::string::npos);
}

TEST_F(CheckpointCli, SaveEveryKeepsTheNewestFew) {
  std::string run = dir_.file("run");
  train(model_, run, {"--max-steps", "10", "--save-every", "2", "--keep", "2"});
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step-10.safetensors"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step-8.safetensors"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step-6.safetensors"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step-2.safetensors"));
}

TEST_F(CheckpointCli, FineTuneReinitialisesAChangedHeadAndFreezes) {
  std::string base = dir_.file("base"), tuned = dir_.file("tuned");
  train(model_, base, {"--epochs", "1"});
  // A 5-class head (the data's 4 labels fit), and conv1 frozen.
  std::string text = replace(tiny_model_yaml(data_, 1, 64), "outputs: 4,", "outputs: 5,");
  text = replace(text, "classes: 4", "classes: 5");
  text = replace(text, "filters: 8, size: 3, pad: 1}", "filters: 8, size: 3, pad: 1, freeze: true}");
  std::string three = dir_.write("five.yaml", text);
  std::vector<std::string> r =
      train(three, tuned, {"--init-from", base + "/checkpoints/last.safetensors", "--max-steps", "4"});
  EXPECT_NE(r[1].find("shape-mismatched (freshly initialised): fc2.weight"), std::string::npos) << r[1];
  EXPECT_NE(r[1].find("loaded: conv1.weight"), std::string::npos) << r[1];
  StFile before = read_safetensors(base + "/checkpoints/last.safetensors");
  StFile after = read_safetensors(tuned + "/checkpoints/last.safetensors");
  EXPECT_EQ(before.find("conv1.weight")->data, after.find("conv1.weight")->data) << "frozen layer moved";
  EXPECT_NE(before.find("fc1.weight")->data, after.find("fc1.weight")->data) << "fc1 did not train";
  EXPECT_EQ(after.find("fc2.weight")->shape, (std::vector<int64_t>{5, 32}));
}

TEST_F(CheckpointCli, RenameMapsLayerNames) {
  std::string base = dir_.file("base"), tuned = dir_.file("tuned");
  train(model_, base, {"--max-steps", "2"});
  std::string renamed =
      dir_.write("renamed.yaml", replace(tiny_model_yaml(data_, 1, 64), "name: fc1,", "name: hidden,"));
  std::vector<std::string> r = train(renamed, tuned, {"--init-from", base + "/checkpoints/last.safetensors",
                                                      "--rename", "fc1=hidden", "--max-steps", "1"});
  EXPECT_NE(r[1].find("hidden.weight <- fc1.weight"), std::string::npos) << r[1];
  EXPECT_NE(r[1].find("0 missing"), std::string::npos) << r[1];
}

TEST_F(CheckpointCli, DamagedCheckpointsGetClearErrors) {
  std::string run = dir_.file("run");
  train(model_, run, {"--max-steps", "2"});
  std::string good = read_text(run + "/checkpoints/last.safetensors");
  std::string bad = dir_.write("truncated.safetensors", good.substr(0, good.size() - 50));
  CliResult r = run_owt({"eval", model_, "--checkpoint", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("truncated.safetensors"), std::string::npos) << r.err;
  // A checkpoint of another model: the missing tensor is named.
  std::string other = dir_.write("other.yaml", replace(tiny_model_yaml(data_), "name: fc2,", "name: head,"));
  r = run_owt({"eval", other, "--checkpoint", run + "/checkpoints/last.safetensors"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'head.weight' is missing"), std::string::npos) << r.err;
  r = run_owt({"train", model_, "--resume", dir_.file("nothing-here")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nothing-here"), std::string::npos) << r.err;
}

TEST_F(CheckpointCli, KilledDuringSavesLeavesALoadableCheckpoint) {
  std::string run = dir_.file("run");
  train(model_, run, {"--max-steps", "1"});
  // Kill a run that saves after every step at several moments; last.safetensors must load.
  for (int delay_ms : {30, 70, 120}) {
    pid_t pid = fork();
    if (pid == 0) {
      std::string bin = owt_binary();
      execl(bin.c_str(), bin.c_str(), "train", model_.c_str(), "--out", run.c_str(), "--threads", "1",
            "--no-progress", "--save-every", "1", "--resume", run.c_str(), nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    CliResult r = run_owt({"eval", model_, "--checkpoint", run + "/checkpoints/last.safetensors", "--json"});
    EXPECT_EQ(r.exit_code, 0) << "after a kill at " << delay_ms << " ms: " << r.err;
  }
}

}  // namespace
}  // namespace owt::test
