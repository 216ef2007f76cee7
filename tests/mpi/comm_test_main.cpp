// main() for gtest programs run under mpirun -np K: one MPI session for the whole run,
// rank 0 prints the usual gtest output, other ranks print only their failures (rank-tagged),
// and every rank exits with the same code (non-zero if any rank failed).
#include <gtest/gtest.h>

#include <mpi.h>

#include <cstdio>
#include <string>

#include "owt/comm/mpi_communicator.h"

namespace {

// Replaces gtest's printer on ranks > 0: failures only, prefixed with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  // The test name is kept here: gtest holds its lock while reporting a part result, so
  // UnitTest::current_test_info() would deadlock inside OnTestPartResult.
  void OnTestStart(const ::testing::TestInfo& info) override {
    test_ = std::string(info.test_suite_name()) + "." + info.name();
  }
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s: %s:%d: failure\n%s\n", rank_, test_.c_str(),
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
    std::fflush(stderr);
  }

 private:
  int rank_;
  std::string test_;
};

// After each test, rank 0 learns which ranks failed it (a failure on rank 2 alone would
// otherwise be invisible in rank 0's summary) and records it as its own failure.
class CrossRankVerdict : public ::testing::EmptyTestEventListener {
 public:
  CrossRankVerdict(int rank, int size) : rank_(rank), size_(size) {}
  void OnTestEnd(const ::testing::TestInfo& info) override {
    int failed = info.result()->Failed() ? 1 : 0;
    int any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any_failed) ++failed_tests_;
  }
  int failed_tests() const { return failed_tests_; }

 private:
  int rank_, size_;
  int failed_tests_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  owt::MpiSession session;
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = session.world_rank();
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  auto* verdict = new CrossRankVerdict(rank, session.world_size());
  listeners.Append(verdict);  // owned by gtest
  const int local = RUN_ALL_TESTS();
  int rc = local != 0 || verdict->failed_tests() > 0 ? 1 : 0;
  int global = 0;
  MPI_Allreduce(&rc, &global, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && global && !local)
    std::fprintf(stderr, "owt: %d test(s) failed on other ranks (see [rank N] lines)\n",
                 verdict->failed_tests());
  return global;
}
