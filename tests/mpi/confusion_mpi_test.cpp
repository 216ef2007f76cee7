// `owt eval --confusion` and `--logits` on K = 2 workers equal K = 1: with class-sharded logits
// (fc2 column-parallel feeding the sharded loss: the arg-max of each row is merged across the
// shards) and with a data-parallel head (each worker predicts its own rows, then they are
// gathered). Counts sum to the test set size and row sums to each class's examples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <regex>

#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

CliResult run_mpi(int np, const std::vector<std::string>& args, int timeout_s = 120) {
  std::vector<std::string> full = {OWT_MPIEXEC, "--oversubscribe", "-np", std::to_string(np), owt_binary()};
  full.insert(full.end(), args.begin(), args.end());
  return run_process(full, timeout_s);
}

// The integers of the "confusion" array of eval --json, row-major.
std::vector<long long> confusion_of(const std::string& json) {
  const size_t at = json.find("\"confusion\": [");
  EXPECT_NE(at, std::string::npos) << json;
  if (at == std::string::npos) return {};
  const size_t end = json.find("]]", at);
  const std::string body = json.substr(at + 14, end - at - 14);
  std::vector<long long> out;
  std::regex number("[0-9]+");
  for (auto it = std::sregex_iterator(body.begin(), body.end(), number); it != std::sregex_iterator(); ++it)
    out.push_back(std::stoll(it->str()));
  return out;
}

// The float32 values of a .npy file written by eval --logits (header skipped).
std::vector<float> npy_values(const std::string& path) {
  const std::string bytes = read_text(path);
  EXPECT_GE(bytes.size(), 10u);
  const size_t header = 10 + (static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8);
  std::vector<float> v((bytes.size() - header) / 4);
  std::memcpy(v.data(), bytes.data() + header, v.size() * 4);
  return v;
}

class ConfusionMpi : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 256, 12, 12, 4, 1, false);
    write_idx_dataset(data_, "t10k", 101, 12, 12, 4, 2, false);  // a partial last batch
    std::string yaml = tiny_model_yaml(data_, 1, 16);
    const std::string head = GetParam();
    if (head == "class-sharded") {  // fc2 column-parallel: the loss sees a class shard
      yaml = std::regex_replace(yaml, std::regex("outputs: 4, parallel: model"),
                                "outputs: 4, parallel: model, split: output");
      yaml = std::regex_replace(yaml, std::regex("outputs: 32, parallel: model"),
                                "outputs: 32, parallel: model, split: output");
    } else {  // every layer data-parallel: each worker scores its own rows
      yaml = std::regex_replace(yaml, std::regex(", parallel: model"), "");
    }
    model_ = dir_.write("tiny.yaml", yaml);
  }
  TempDir dir_;
  std::string data_, model_;
};

TEST_P(ConfusionMpi, TwoWorkersEqualOne) {
  const std::string run = dir_.file("run");
  // One step: the predictions are still mixed, so the matrix is not just its diagonal.
  CliResult t = run_owt({"train", model_, "--out", run, "--max-steps", "1", "--no-progress"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string ck = run + "/checkpoints/last.safetensors";
  CliResult one = run_owt({"eval", model_, "--checkpoint", ck, "--json", "--confusion", "--batch", "16",
                           "--logits", dir_.file("one.npy")});
  CliResult two = run_mpi(2, {"eval", model_, "--checkpoint", ck, "--json", "--confusion", "--batch", "8",
                              "--logits", dir_.file("two.npy")});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const std::vector<long long> c1 = confusion_of(one.out), c2 = confusion_of(two.out);
  ASSERT_EQ(c1.size(), 16u) << one.out;
  EXPECT_EQ(c1, c2) << one.out << "\n" << two.out;
  long long total = 0;
  for (int c = 0; c < 4; ++c) {
    long long row = 0;
    for (int p = 0; p < 4; ++p) row += c1[c * 4 + p];
    // write_idx_dataset labels example i as i % 4: 101 examples -> 26, 25, 25, 25.
    EXPECT_EQ(row, c == 0 ? 26 : 25) << "class " << c;
    total += row;
  }
  EXPECT_EQ(total, 101);
  EXPECT_LT(c1[0] + c1[5] + c1[10] + c1[15], total) << "no mistakes to compare: " << one.out;
  // The logits, gathered from the two workers, equal one worker's.
  const std::vector<float> l1 = npy_values(dir_.file("one.npy")), l2 = npy_values(dir_.file("two.npy"));
  ASSERT_EQ(l1.size(), 101u * 4);
  ASSERT_EQ(l2.size(), l1.size());
  for (size_t i = 0; i < l1.size(); ++i) ASSERT_NEAR(l1[i], l2[i], 1e-4 * (1 + std::fabs(l1[i]))) << i;
}

INSTANTIATE_TEST_SUITE_P(Heads, ConfusionMpi, ::testing::Values("class-sharded", "data-parallel"),
                         [](const auto& info) {
                           return std::string(info.param) == "class-sharded" ? "ClassSharded" : "DataParallel";
                         });

}  // namespace
}  // namespace owt::test
