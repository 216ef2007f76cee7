// Memory known before it is spent, end to end: `owt plan --json`'s estimate is within 15% of the
// peak resident set `owt train` then reaches (models/fmnist.yaml; a 100,000-class head), and a
// run whose estimate exceeds the memory ends with one `owt: error:` line naming both numbers
// before anything is written; --skip-memory-check starts it anyway.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/memory_probe.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

const std::string kFmnist = std::string(OWT_SOURCE_DIR) + "/models/fmnist.yaml";

// Trains `args` (one worker, one thread) and checks its peak resident set against `estimate`.
void expect_peak_near(std::vector<std::string> args, int64_t estimate) {
  args.insert(args.begin(), owt_binary());
  const MeasuredRun m = run_measured(args, 120);
  const CliResult& r = m.result;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("owt: memory: peak resident set "), std::string::npos) << r.out;
  const int64_t peak = m.peak;
  const double error = std::abs(static_cast<double>(estimate - peak)) / static_cast<double>(peak);
  EXPECT_LT(error, 0.15) << "estimated " << estimate << " bytes, measured peak " << peak;
  std::printf("estimated %.1f MiB, peak resident set %.1f MiB (%+.1f%%)\n", estimate / 1048576.0,
              peak / 1048576.0, 100.0 * (estimate - peak) / peak);
}

TEST(MemoryCli, FmnistEstimateWithin15PercentOfPeakRss) {
  if (address_sanitizer_loaded()) GTEST_SKIP() << "peak RSS under AddressSanitizer is its shadow memory";
  TempDir dir;
  const std::string data = dir.file("data");
  write_idx_dataset(data, "train", 1024, 28, 28, 10, 1, false);
  write_idx_dataset(data, "t10k", 256, 28, 28, 10, 2, false);
  const int64_t estimate = planned_peak(kFmnist, 1, 128, 1);
  expect_peak_near({"train", kFmnist, "--data", data, "--max-steps", "3", "--threads", "1",
                    "--out", dir.file("run"), "--no-progress"},
                   estimate);
}

TEST(MemoryCli, HundredThousandClassHeadWithin15PercentOfPeakRss) {
  if (address_sanitizer_loaded()) GTEST_SKIP() << "peak RSS under AddressSanitizer is its shadow memory";
  TempDir dir;
  const std::string data = dir.file("data");
  write_idx_dataset(data, "train", 256, 8, 8, 100, 1, false);
  write_idx_dataset(data, "t10k", 64, 8, 8, 100, 2, false);
  const std::string model = dir.write("head.yaml", wide_head_yaml(data, 100000, 32));
  const int64_t estimate = planned_peak(model, 1, 32, 1);
  // The head alone: 6.4M weights, 24.4 MiB each for values, gradients and momentum.
  EXPECT_GT(estimate, 3 * 24 * (int64_t{1} << 20));
  expect_peak_near({"train", model, "--max-steps", "3", "--threads", "1", "--out",
                    dir.file("run"), "--no-progress"},
                   estimate);
}

TEST(MemoryCli, RefusesBeforeWritingAnythingAndNamesBothNumbers) {
  TempDir dir;
  const std::string data = dir.file("data");
  write_idx_dataset(data, "train", 256, 28, 28, 10, 1, false);
  write_idx_dataset(data, "t10k", 64, 28, 28, 10, 2, false);
  const std::string run = dir.file("run");
  setenv("OWT_MEMORY_LIMIT_BYTES", "1000000", 1);
  const CliResult r = run_owt({"train", kFmnist, "--data", data, "--out", run, "--no-progress"});
  EXPECT_EQ(r.exit_code, 1);
  std::istringstream lines(r.err);
  std::string line, error;
  int errors = 0;
  while (std::getline(lines, line))
    if (line.rfind("owt: error: ", 0) == 0) ++errors, error = line;
  EXPECT_EQ(errors, 1) << r.err;
  EXPECT_NE(error.find("fmnist.yaml: the hybrid plan needs about "), std::string::npos) << error;
  EXPECT_NE(error.find(" MiB of host memory per worker (parameters 12.5 MiB, gradients 12.5 MiB, "
                       "momentum 12.5 MiB"),
            std::string::npos) << error;
  EXPECT_NE(error.find("but this host has "), std::string::npos) << error;
  EXPECT_NE(error.find("(OWT_MEMORY_LIMIT_BYTES 976.6 KiB + "), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(run)) << "a refused run leaves no run directory";

  // The escape hatch.
  const CliResult skipped = run_owt({"train", kFmnist, "--data", data, "--out", run, "--max-steps",
                                     "1", "--threads", "1", "--no-progress", "--skip-memory-check"});
  unsetenv("OWT_MEMORY_LIMIT_BYTES");
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/last.safetensors"));
}

TEST(MemoryCli, PlanPrintsMemoryForBothSchemes) {
  const CliResult r = run_owt({"plan", kFmnist, "--workers", "4", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"memory per worker", "parameters", "gradients",
                          "optimizer state (momentum)", "activations, total", "transition",
                          "communication (MPI buffers)", "peak", "largest activations, owt hybrid:",
                          "largest activations, data-parallel:"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row << " in\n" << r.out;
  // fc1's 3.2M weights are split over 4 workers in the hybrid plan, whole under dp.
  EXPECT_NE(r.out.find("  parameters                               3.27 MiB       12.5 MiB"),
            std::string::npos) << r.out;
  const int64_t owt = planned_peak(kFmnist, 4, 128, 1), dp = planned_peak(kFmnist, 4, 128, 1, true);
  EXPECT_LT(owt, dp);
}

}  // namespace
}  // namespace owt::test
