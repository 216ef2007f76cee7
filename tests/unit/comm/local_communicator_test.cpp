// K = 1 communicator: identity/copy semantics, immediate handles, zero counters, and the
// world-communicator choice when not launched under MPI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "owt/comm/communicator.h"
#include "owt/comm/make_communicator.h"
#include "owt/core/error.h"

namespace owt {
namespace {

TEST(LocalCommunicator, IsRankZeroOfOne) {
  auto comm = make_local_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->name(), "local");
}

TEST(LocalCommunicator, AllReduceIsIdentity) {
  auto comm = make_local_communicator();
  std::vector<float> buf = {1, -2, 3.5f};
  comm->all_reduce(buf.data(), buf.size());
  EXPECT_EQ(buf, (std::vector<float>{1, -2, 3.5f}));
}

TEST(LocalCommunicator, AllGatherCopiesIntoDistinctBuffer) {
  auto comm = make_local_communicator();
  const std::vector<float> send = {4, 5, 6};
  std::vector<float> recv(3, -1);
  comm->all_gather(send.data(), recv.data(), {3});
  EXPECT_EQ(recv, send);
  // In place is the identity.
  comm->all_gather(recv.data(), recv.data(), {3});
  EXPECT_EQ(recv, send);
}

TEST(LocalCommunicator, ReduceScatterCopiesIntoDistinctBuffer) {
  auto comm = make_local_communicator();
  const std::vector<float> send = {7, 8};
  std::vector<float> recv(2, 0);
  comm->reduce_scatter(send.data(), recv.data(), {2});
  EXPECT_EQ(recv, send);
}

TEST(LocalCommunicator, BroadcastAndReduceAreIdentity) {
  auto comm = make_local_communicator();
  std::vector<float> buf = {1, 2};
  comm->broadcast(buf.data(), buf.size(), 0);
  comm->reduce(buf.data(), buf.size(), 0);
  EXPECT_EQ(buf, (std::vector<float>{1, 2}));
  comm->barrier();
}

TEST(LocalCommunicator, AsyncHandlesAreCompleteAndReusable) {
  auto comm = make_local_communicator();
  std::vector<float> a = {1}, b(1, 0);
  auto h1 = comm->all_reduce_async(a.data(), 1);
  auto h2 = comm->all_gather_async(a.data(), b.data(), {1});
  EXPECT_EQ(b[0], 1.0f);  // complete before wait
  h2->wait();
  h1->wait();
  h1->wait();  // waiting twice is harmless
}

TEST(LocalCommunicator, CountersStayZero) {
  auto comm = make_local_communicator();
  std::vector<float> buf(10, 1), out(10);
  comm->all_reduce(buf.data(), 10);
  comm->all_gather(buf.data(), out.data(), {10});
  comm->reduce_scatter(buf.data(), out.data(), {10});
  comm->broadcast(buf.data(), 10, 0);
  comm->reduce(buf.data(), 10, 0);
  for (int i = 0; i < static_cast<int>(CommOp::Count); ++i) {
    const auto op = static_cast<CommOp>(i);
    EXPECT_EQ(comm->elements_sent(op), 0u) << comm_op_name(op);
  }
  EXPECT_EQ(comm->total_elements_sent(), 0u);
}

TEST(LocalCommunicator, RejectsWrongCountsAndRoots) {
  auto comm = make_local_communicator();
  std::vector<float> buf(4);
  EXPECT_THROW(comm->all_gather(buf.data(), buf.data(), {2, 2}), Error);
  EXPECT_THROW(comm->reduce_scatter(buf.data(), buf.data(), {}), Error);
  EXPECT_THROW(comm->broadcast(buf.data(), 4, 1), Error);
  EXPECT_THROW(comm->reduce(buf.data(), 4, -1), Error);
}

TEST(LocalCommunicatorDeathTest, AbortAllPrintsAndExits) {
  auto comm = make_local_communicator();
  EXPECT_EXIT(comm->abort_all("it broke", 3), ::testing::ExitedWithCode(3), "owt: error: it broke");
}

TEST(CommOpName, NamesEveryOp) {
  EXPECT_STREQ(comm_op_name(CommOp::AllReduce), "all_reduce");
  EXPECT_STREQ(comm_op_name(CommOp::AllGather), "all_gather");
  EXPECT_STREQ(comm_op_name(CommOp::ReduceScatter), "reduce_scatter");
  EXPECT_STREQ(comm_op_name(CommOp::Broadcast), "broadcast");
  EXPECT_STREQ(comm_op_name(CommOp::Reduce), "reduce");
}

TEST(ShardCounts, SumToTotalAndDifferByAtMostOne) {
  for (int k = 1; k <= 5; ++k) {
    auto c = shard_counts(10, k);
    size_t total = 0;
    for (size_t x : c) total += x;
    EXPECT_EQ(total, 10u);
    for (size_t x : c) EXPECT_LE(x - c.front() + 1, 2u);  // each is c0 or c0 + 1
  }
  EXPECT_EQ(shard_counts(4, 2, 3), (std::vector<size_t>{6, 6}));
}

TEST(WorldCommunicator, IsLocalWithoutLauncher) {
  if (launched_under_mpi()) GTEST_SKIP() << "running under an MPI launcher";
  auto comm = make_world_communicator();
  EXPECT_EQ(comm->name(), "local");
  EXPECT_EQ(comm->size(), 1);
}

TEST(WorldCommunicator, LauncherWithoutMpiBuildIsAClearError) {
  if (built_with_mpi()) GTEST_SKIP() << "this build has MPI; tests/mpi covers it";
  if (launched_under_mpi()) GTEST_SKIP() << "running under an MPI launcher";
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  try {
    make_world_communicator();
    ADD_FAILURE() << "expected owt::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("built without MPI"), std::string::npos) << e.what();
  }
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
}

}  // namespace
}  // namespace owt
