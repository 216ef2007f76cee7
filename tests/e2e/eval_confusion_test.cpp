// `owt eval --confusion` on one worker: the table (class names from the model file), the JSON
// matrix (counts sum to the test set size, row sums to each class's examples, the diagonal to
// top-1), and `--logits` as a .npy file of (examples, classes) float32.
#include <gtest/gtest.h>

#include <regex>

#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

std::vector<long long> numbers_in(const std::string& text) {
  std::vector<long long> out;
  std::regex number("[0-9]+");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it)
    out.push_back(std::stoll(it->str()));
  return out;
}

class EvalConfusion : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string data = dir_.file("data");
    write_idx_dataset(data, "train", 128, 12, 12, 4, 1, false);
    write_idx_dataset(data, "t10k", 50, 12, 12, 4, 2, false);
    std::string yaml = tiny_model_yaml(data, 1, 16);
    yaml = std::regex_replace(yaml, std::regex("std: \\[0.3\\]\\}"),
                              "std: [0.3], class_names: [circle, \"say \\\"hi\\\"\", cross, dot]}");
    model_ = dir_.write("tiny.yaml", yaml);
    CliResult t = run_owt({"train", model_, "--out", dir_.file("run"), "--max-steps", "1", "--no-progress"});
    ASSERT_EQ(t.exit_code, 0) << t.err;
    ck_ = dir_.file("run") + "/checkpoints/last.safetensors";
  }
  TempDir dir_;
  std::string model_, ck_;
};

TEST_F(EvalConfusion, TableOnTheTerminal) {
  CliResult r = run_owt({"eval", model_, "--checkpoint", ck_, "--confusion"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("confusion matrix (rows: true class, columns: predicted class)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("examples  accuracy"), std::string::npos) << r.out;
  for (const char* name : {"0 circle", "1 say \"hi\"", "2 cross", "3 dot"})
    EXPECT_NE(r.out.find(name), std::string::npos) << name << "\n" << r.out;
  // 50 examples labelled i % 4: 13, 13, 12, 12.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\n3 dot +([0-9 ]+) +([0-9.]+)%"))) << r.out;
  const std::vector<long long> row = numbers_in(m[1].str());
  ASSERT_EQ(row.size(), 5u);  // four counts, then the examples
  EXPECT_EQ(row[0] + row[1] + row[2] + row[3], 12);
  EXPECT_EQ(row[4], 12);
}

TEST_F(EvalConfusion, JsonMatrixAndLogits) {
  const std::string npy = dir_.file("logits.npy");
  CliResult r = run_owt({"eval", model_, "--checkpoint", ck_, "--confusion", "--json", "--logits", npy});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"classes\": [\"circle\", \"say \\\"hi\\\"\", \"cross\", \"dot\"]"), std::string::npos) << r.out;
  const size_t at = r.out.find("\"confusion\": ["), end = r.out.find("]]", at);
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::vector<long long> c = numbers_in(r.out.substr(at, end - at));
  ASSERT_EQ(c.size(), 16u);
  long long total = 0, diagonal = 0;
  for (int t = 0; t < 4; ++t) {
    long long row = 0;
    for (int p = 0; p < 4; ++p) row += c[t * 4 + p];
    EXPECT_EQ(row, t < 2 ? 13 : 12) << "class " << t;
    total += row;
    diagonal += c[t * 5];
  }
  EXPECT_EQ(total, 50);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\"top1\": ([0-9.]+)")));
  EXPECT_NEAR(std::stod(m[1].str()), diagonal / 50.0, 1e-6);
  EXPECT_NE(r.out.find("\"per_class\": [{\"class\": \"circle\", \"examples\": 13, \"correct\": "), std::string::npos)
      << r.out;

  const std::string bytes = read_text(npy);
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header = 10 + static_cast<uint8_t>(bytes[8]);
  EXPECT_EQ(header % 64, 0u);
  EXPECT_NE(bytes.substr(10, header - 10).find("'descr': '<f4', 'fortran_order': False, 'shape': (50, 4)"),
            std::string::npos);
  EXPECT_EQ(bytes.size(), header + 50 * 4 * 4);
}

}  // namespace
}  // namespace owt::test
