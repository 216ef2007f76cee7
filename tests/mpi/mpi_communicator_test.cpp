// The MPI communicator under mpirun -np K (K = 1..4): exact results of every collective with
// small-integer floats, uneven and empty shards, several ops in flight, the counting
// convention of mpi_communicator.h, barrier, and argument errors.
#include <gtest/gtest.h>

#include <mpi.h>

#include <chrono>
#include <thread>
#include <vector>

#include "owt/comm/make_communicator.h"
#include "owt/comm/mpi_communicator.h"
#include "owt/core/error.h"

namespace owt {
namespace {

class MpiComm : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = make_mpi_communicator();
    r_ = comm_->rank();
    k_ = comm_->size();
  }
  std::vector<size_t> displs(const std::vector<size_t>& counts) const {
    std::vector<size_t> d(counts.size(), 0);
    for (size_t i = 1; i < counts.size(); ++i) d[i] = d[i - 1] + counts[i - 1];
    return d;
  }
  static size_t total(const std::vector<size_t>& counts) {
    size_t t = 0;
    for (size_t c : counts) t += c;
    return t;
  }
  uint64_t others(const std::vector<size_t>& counts) const { return total(counts) - counts[r_]; }
  float tri() const { return static_cast<float>(k_ * (k_ + 1) / 2); }  // sum of (s + 1)

  std::unique_ptr<Communicator> comm_;
  int r_ = 0, k_ = 1;
};

TEST_F(MpiComm, RankAndSizeMatchWorld) {
  int wr = -1, ws = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &wr);
  MPI_Comm_size(MPI_COMM_WORLD, &ws);
  EXPECT_EQ(r_, wr);
  EXPECT_EQ(k_, ws);
  EXPECT_EQ(comm_->name(), "mpi");
}

TEST_F(MpiComm, WorldCommunicatorIsMpiUnderLauncher) {
  ASSERT_TRUE(launched_under_mpi());
  auto world = make_world_communicator();
  EXPECT_EQ(world->name(), "mpi");
  EXPECT_EQ(world->size(), k_);
  EXPECT_EQ(world->rank(), r_);
}

TEST_F(MpiComm, AllReduceSums) {
  std::vector<float> buf(7);
  for (int i = 0; i < 7; ++i) buf[i] = 10.0f * (r_ + 1) + i;
  comm_->all_reduce(buf.data(), buf.size());
  for (int i = 0; i < 7; ++i) EXPECT_EQ(buf[i], 10.0f * tri() + k_ * i) << "i=" << i;
  comm_->all_reduce(buf.data(), 0);  // empty is fine
}

TEST_F(MpiComm, AllGatherUneven) {
  for (size_t n : {size_t(10), size_t(2), size_t(0)}) {  // 2 over 3-4 ranks leaves empty shards
    const auto counts = shard_counts(n, k_);
    const auto d = displs(counts);
    std::vector<float> send(counts[r_]);
    for (size_t j = 0; j < send.size(); ++j) send[j] = 100.0f * r_ + j;
    std::vector<float> recv(n + 1, -7.0f);  // one sentinel past the end
    comm_->all_gather(send.data(), recv.data(), counts);
    for (int s = 0; s < k_; ++s)
      for (size_t j = 0; j < counts[s]; ++j)
        EXPECT_EQ(recv[d[s] + j], 100.0f * s + j) << "n=" << n << " s=" << s << " j=" << j;
    EXPECT_EQ(recv[n], -7.0f);
  }
}

TEST_F(MpiComm, AllGatherInPlaceAndRows) {
  const auto counts = shard_counts(5, k_, 3);  // 5 rows of 3 floats
  const auto d = displs(counts);
  std::vector<float> recv(15, -1.0f);
  for (size_t j = 0; j < counts[r_]; ++j) recv[d[r_] + j] = 1000.0f + d[r_] + j;
  comm_->all_gather(recv.data() + d[r_], recv.data(), counts);
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ(recv[i], 1000.0f + i) << "i=" << i;
}

TEST_F(MpiComm, ReduceScatterUneven) {
  for (size_t n : {size_t(10), size_t(3)}) {
    const auto counts = shard_counts(n, k_);
    const auto d = displs(counts);
    std::vector<float> send(n);
    for (size_t i = 0; i < n; ++i) send[i] = (r_ + 1.0f) * (i + 1);
    std::vector<float> recv(counts[r_] + 1, -7.0f);
    comm_->reduce_scatter(send.data(), recv.data(), counts);
    for (size_t j = 0; j < counts[r_]; ++j)
      EXPECT_EQ(recv[j], tri() * (d[r_] + j + 1)) << "n=" << n << " j=" << j;
    EXPECT_EQ(recv[counts[r_]], -7.0f);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(send[i], (r_ + 1.0f) * (i + 1));  // input intact
  }
}

TEST_F(MpiComm, ReduceScatterInPlace) {
  const auto counts = shard_counts(9, k_);
  const auto d = displs(counts);
  std::vector<float> buf(9);
  for (size_t i = 0; i < 9; ++i) buf[i] = (r_ + 1.0f) * (i + 1);
  comm_->reduce_scatter(buf.data(), buf.data(), counts);
  for (size_t j = 0; j < counts[r_]; ++j) EXPECT_EQ(buf[j], tri() * (d[r_] + j + 1));
}

TEST_F(MpiComm, BroadcastFromEachRoot) {
  for (int root = 0; root < k_; ++root) {
    std::vector<float> buf(5, -1.0f);
    if (r_ == root)
      for (int i = 0; i < 5; ++i) buf[i] = 10.0f * root + i;
    comm_->broadcast(buf.data(), buf.size(), root);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(buf[i], 10.0f * root + i) << "root=" << root;
  }
}

TEST_F(MpiComm, ReduceToEachRoot) {
  for (int root = 0; root < k_; ++root) {
    std::vector<float> buf(4);
    for (int i = 0; i < 4; ++i) buf[i] = (r_ + 1.0f) * (i + 1);
    comm_->reduce(buf.data(), buf.size(), root);
    for (int i = 0; i < 4; ++i) {
      const float want = r_ == root ? tri() * (i + 1) : (r_ + 1.0f) * (i + 1);
      EXPECT_EQ(buf[i], want) << "root=" << root << " i=" << i;
    }
  }
}

TEST_F(MpiComm, SeveralOpsInFlightWaitedInReverse) {
  std::vector<float> a(6), b(6), g(10, -1.0f), rs, bc(3, -1.0f), rd(3);
  for (int i = 0; i < 6; ++i) a[i] = (r_ + 1.0f) * i, b[i] = (r_ + 1.0f) + i;
  const auto counts = shard_counts(10, k_);
  const auto d = displs(counts);
  std::vector<float> gsend(counts[r_]);
  for (size_t j = 0; j < gsend.size(); ++j) gsend[j] = 100.0f * r_ + j;
  std::vector<float> rsend(10);
  for (int i = 0; i < 10; ++i) rsend[i] = (r_ + 1.0f) * (i + 1);
  rs.assign(counts[r_], -1.0f);
  const int root = k_ - 1;
  if (r_ == root) bc = {5, 6, 7};
  for (int i = 0; i < 3; ++i) rd[i] = r_ + 1.0f + i;

  std::vector<std::unique_ptr<CommHandle>> hs;
  hs.push_back(comm_->all_reduce_async(a.data(), a.size()));
  hs.push_back(comm_->all_gather_async(gsend.data(), g.data(), counts));
  hs.push_back(comm_->all_reduce_async(b.data(), b.size()));
  hs.push_back(comm_->reduce_scatter_async(rsend.data(), rs.data(), counts));
  hs.push_back(comm_->broadcast_async(bc.data(), bc.size(), root));
  hs.push_back(comm_->reduce_async(rd.data(), rd.size(), 0));
  for (auto it = hs.rbegin(); it != hs.rend(); ++it) (*it)->wait();

  for (int i = 0; i < 6; ++i) EXPECT_EQ(a[i], tri() * i);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b[i], tri() + k_ * i);
  for (int s = 0; s < k_; ++s)
    for (size_t j = 0; j < counts[s]; ++j) EXPECT_EQ(g[d[s] + j], 100.0f * s + j);
  for (size_t j = 0; j < counts[r_]; ++j) EXPECT_EQ(rs[j], tri() * (d[r_] + j + 1));
  EXPECT_EQ(bc, (std::vector<float>{5, 6, 7}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rd[i], r_ == 0 ? tri() + k_ * i : r_ + 1.0f + i);
}

TEST_F(MpiComm, UnwaitedHandleCompletesOnDestruction) {
  std::vector<float> buf(3, r_ + 1.0f);
  { auto h = comm_->all_reduce_async(buf.data(), buf.size()); }
  for (float x : buf) EXPECT_EQ(x, tri());
}

TEST_F(MpiComm, CountersFollowTheConvention) {
  const uint64_t n = 13;  // not a multiple of 2, 3 or 4: uneven shards
  std::vector<float> buf(n, 1.0f), out(n);
  const auto counts = shard_counts(n, k_);
  const bool multi = k_ > 1;
  comm_->reset_counters();

  comm_->all_reduce(buf.data(), n);
  EXPECT_EQ(comm_->elements_sent(CommOp::AllReduce), 2 * others(counts));

  comm_->all_gather(buf.data(), out.data(), counts);
  EXPECT_EQ(comm_->elements_sent(CommOp::AllGather), others(counts));

  comm_->reduce_scatter(buf.data(), out.data(), counts);
  EXPECT_EQ(comm_->elements_sent(CommOp::ReduceScatter), others(counts));

  for (int root = 0; root < k_; ++root) {
    comm_->broadcast(buf.data(), n, root);
    comm_->reduce(buf.data(), n, root);
  }
  // Every rank is a non-root K - 1 times.
  EXPECT_EQ(comm_->elements_sent(CommOp::Broadcast), (k_ - 1) * n);
  EXPECT_EQ(comm_->elements_sent(CommOp::Reduce), (k_ - 1) * n);
  EXPECT_EQ(comm_->total_elements_sent(), 4 * others(counts) + 2 * (k_ - 1) * n);
  if (!multi) {
    EXPECT_EQ(comm_->total_elements_sent(), 0u);
  }

  comm_->reset_counters();
  EXPECT_EQ(comm_->total_elements_sent(), 0u);
}

// Summed over ranks, each op's count is K times the cost model's per-worker figure.
TEST_F(MpiComm, CountersAverageToTheCostModel) {
  const uint64_t n = 10;
  std::vector<float> buf(n, 1.0f), out(n);
  auto summed = [&](CommOp op) {
    uint64_t mine = comm_->elements_sent(op), sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    return sum;
  };
  comm_->reset_counters();
  comm_->all_reduce(buf.data(), n);
  comm_->all_gather(buf.data(), out.data(), shard_counts(n, k_));
  comm_->reduce_scatter(buf.data(), out.data(), shard_counts(n, k_));
  comm_->broadcast(buf.data(), n, 0);
  comm_->reduce(buf.data(), n, k_ - 1);
  const uint64_t km1 = k_ - 1;
  EXPECT_EQ(summed(CommOp::AllReduce), 2 * n * km1);      // K * 2n(K-1)/K
  EXPECT_EQ(summed(CommOp::AllGather), n * km1);          // K * n(K-1)/K
  EXPECT_EQ(summed(CommOp::ReduceScatter), n * km1);
  EXPECT_EQ(summed(CommOp::Broadcast), n * km1);
  EXPECT_EQ(summed(CommOp::Reduce), n * km1);
}

// Dettmers' example (header comment) replayed on real buffers when K = 2.
TEST_F(MpiComm, DettmersArithmeticAtTwoRanks) {
  if (k_ != 2) GTEST_SKIP() << "the example is for 2 workers";
  const size_t b = 128;
  std::vector<float> big(1000 * 500, 0.0f), out(1000 * 500);
  comm_->reset_counters();
  comm_->all_reduce(big.data(), 1000 * 500);  // data parallel: weight gradient
  EXPECT_EQ(comm_->total_elements_sent(), 500000u);

  comm_->reset_counters();  // output split: gather H (b, 1000) by features, all-reduce dX (b, 500)
  comm_->all_gather(big.data(), out.data(), shard_counts(b * 1000, 2));
  comm_->all_reduce(big.data(), b * 500);
  EXPECT_EQ(comm_->total_elements_sent(), 128000u);

  comm_->reset_counters();  // input split: all-reduce partial H (b, 1000), gather dX (b, 500)
  comm_->all_reduce(big.data(), b * 1000);
  comm_->all_gather(big.data(), out.data(), shard_counts(b * 500, 2));
  EXPECT_EQ(comm_->total_elements_sent(), 160000u);
}

TEST_F(MpiComm, BarrierHoldsEveryoneUntilTheLastArrives) {
  using clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: shared by processes on a node
  std::this_thread::sleep_for(std::chrono::milliseconds(40 * r_));
  const double arrive = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
  comm_->barrier();
  const double leave = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
  std::vector<double> arrivals(k_);
  MPI_Allgather(&arrive, 1, MPI_DOUBLE, arrivals.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD);
  for (double t : arrivals) EXPECT_GE(leave, t);
}

TEST_F(MpiComm, BadArgumentsThrowBeforeAnyMpiCall) {
  std::vector<float> buf(8);
  std::vector<size_t> wrong(k_ + 1, 1);
  EXPECT_THROW(comm_->all_gather(buf.data(), buf.data(), wrong), Error);
  EXPECT_THROW(comm_->reduce_scatter(buf.data(), buf.data(), wrong), Error);
  EXPECT_THROW(comm_->broadcast(buf.data(), 8, k_), Error);
  EXPECT_THROW(comm_->reduce(buf.data(), 8, -1), Error);
  EXPECT_EQ(comm_->total_elements_sent(), 0u);
  comm_->barrier();  // still in step
}

}  // namespace
}  // namespace owt
