// tools/plot.py (Debian's matplotlib): a valid PNG and SVG for one run and for two, and a clear
// error for a directory without metrics.
#include <filesystem>

#include "support/idx_writer.h"
#include "support/temp_dir.h"
#include "tools_support.h"

namespace owt::test {
namespace {

class Plot : public ::testing::Test {
 protected:
  // Two short runs, trained once for all the tests here.
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const std::string data = dir_->file("data");
    write_idx_dataset(data, "train", 128, 12, 12, 4, 1, false);
    write_idx_dataset(data, "t10k", 32, 12, 12, 4, 2, false);
    const std::string model = dir_->write("tiny.yaml", tiny_model_yaml(data, 3, 32));
    for (const char* name : {"run_a", "run_b"}) {
      CliResult r = run_owt({"train", model, "--out", dir_->file(name), "--no-progress", "--lr",
                             name[4] == 'a' ? "0.05" : "0.02"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  static CliResult plot(const std::vector<std::string>& args) {
    return run_python("/usr/bin/python3", source_path("tools/plot.py"), args, 120);
  }
  static TempDir* dir_;
};
TempDir* Plot::dir_ = nullptr;

// Width and height from a PNG's IHDR chunk, after checking the signature.
std::pair<int, int> png_size(const std::string& bytes) {
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  auto be32 = [&](size_t at) {
    return static_cast<int>(static_cast<uint8_t>(bytes[at]) << 24 | static_cast<uint8_t>(bytes[at + 1]) << 16 |
                            static_cast<uint8_t>(bytes[at + 2]) << 8 | static_cast<uint8_t>(bytes[at + 3]));
  };
  EXPECT_EQ(bytes.substr(bytes.size() - 8, 4), "IEND");
  return {be32(16), be32(20)};
}

TEST_F(Plot, OneRunAsPng) {
  const std::string out = dir_->file("one.png");
  CliResult r = plot({dir_->file("run_a"), "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto [w, h] = png_size(read_text(out));
  EXPECT_GT(w, 600);
  EXPECT_GT(h, 300);
}

TEST_F(Plot, TwoRunsAsSvgWithALegendByRunName) {
  const std::string out = dir_->file("two.svg");
  CliResult r = plot({dir_->file("run_a"), dir_->file("run_b") + "/metrics.jsonl", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string svg = read_text(out);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // matplotlib writes text as paths, with the string in a comment: both legend entries.
  EXPECT_NE(svg.find("run_a"), std::string::npos);
  EXPECT_NE(svg.find("run_b"), std::string::npos);
  EXPECT_NE(svg.find("test top-1"), std::string::npos);
}

TEST_F(Plot, TwoRunsAsPng) {
  const std::string out = dir_->file("two.png");
  CliResult r = plot({dir_->file("run_a"), dir_->file("run_b"), "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  png_size(read_text(out));
}

TEST_F(Plot, ADirectoryWithoutMetricsIsAClearError) {
  const std::string empty = dir_->file("empty");
  std::filesystem::create_directories(empty);
  CliResult r = plot({dir_->file("run_a"), empty, "-o", dir_->file("bad.png")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("plot: error: " + empty + ": no metrics.jsonl"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_->file("bad.png")));
  r = plot({dir_->file("run_a"), "-o", dir_->file("plot.gif")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown format '.gif'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace owt::test
