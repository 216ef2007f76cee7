// `mpirun -np 2 owt train` and memory: a 100,000-class head sharded over 2 workers peaks within
// 15% of `owt plan --workers 2`'s estimate on every rank, and a run that would not fit ends on
// every rank, non-zero, with the message printed once and no run directory.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/memory_probe.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

MeasuredRun run_mpi(int np, const std::vector<std::string>& mpi_flags,
                    const std::vector<std::string>& args) {
  std::vector<std::string> full = {OWT_MPIEXEC, "--oversubscribe", "-np", std::to_string(np)};
  full.insert(full.end(), mpi_flags.begin(), mpi_flags.end());
  full.push_back(owt_binary());
  full.insert(full.end(), args.begin(), args.end());
  return run_measured(full, 120);
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class MemoryMpi : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 256, 8, 8, 100, 1, false);
    write_idx_dataset(data_, "t10k", 64, 8, 8, 100, 2, false);
    model_ = dir_.write("head.yaml", wide_head_yaml(data_, 100000, 16));
  }
  TempDir dir_;
  std::string data_, model_;
};

TEST_F(MemoryMpi, ShardedHeadWithin15PercentOfEveryRanksPeakRss) {
  if (address_sanitizer_loaded()) GTEST_SKIP() << "peak RSS under AddressSanitizer is its shadow memory";
  const int64_t estimate = planned_peak(model_, 2, 16, 1);
  const MeasuredRun m = run_mpi(2, {}, {"train", model_, "--max-steps", "3", "--threads", "1",
                                        "--out", dir_.file("run"), "--no-progress"});
  const CliResult& r = m.result;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("owt: memory: peak resident set "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", the largest)"), std::string::npos) << r.out;
  // mpirun waits for its ranks: the largest of theirs (mpirun's own is far smaller).
  const int64_t peak = m.peak;
  const double error = std::abs(static_cast<double>(estimate - peak)) / static_cast<double>(peak);
  EXPECT_LT(error, 0.15) << "estimated " << estimate << " bytes, measured peak " << peak;
  std::printf("estimated %.1f MiB per worker, largest rank's peak %.1f MiB (%+.1f%%)\n",
              estimate / 1048576.0, peak / 1048576.0, 100.0 * (estimate - peak) / peak);
  // Under dp each worker holds the whole head, and MPI's copy of its gradient: far more.
  EXPECT_GT(planned_peak(model_, 2, 16, 1, true), estimate + 3 * 12 * (int64_t{1} << 20));
}

TEST_F(MemoryMpi, EveryRankRefusesWithOneMessage) {
  const std::string run = dir_.file("run");
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult r = run_mpi(2, {"-x", "OWT_MEMORY_LIMIT_BYTES=1000000"},
                              {"train", model_, "--out", run, "--no-progress"}).result;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128 + 9) << "killed by the time limit?";
  const std::string all = r.out + r.err;
  EXPECT_EQ(count(all, "needs about "), 1) << all;
  EXPECT_NE(all.find("head.yaml: the hybrid plan needs about "), std::string::npos) << all;
  EXPECT_NE(all.find("but 2 workers on this host have "), std::string::npos) << all;
  EXPECT_NE(all.find("(OWT_MEMORY_LIMIT_BYTES 976.6 KiB / 2 + "), std::string::npos) << all;
  EXPECT_FALSE(fs::exists(run)) << "a refused run leaves no run directory";
  EXPECT_LT(seconds, 30) << "ranks did not end promptly";
}

}  // namespace
}  // namespace owt::test
