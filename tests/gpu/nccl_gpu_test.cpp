// The NCCL communicator on one GPU (K = 1, over the local communicator: no MPI, no mpirun):
// every collective on device buffers, async handles, host buffers handed to the world
// communicator, and a clean destroy. One GPU cannot host two NCCL ranks; several workers are
// the mpi suite's, on a machine with several GPUs. Skipped without a CUDA device (failed
// under OWT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <chrono>

#include "gpu_test_util.h"
#include "owt/comm/nccl_communicator.h"

namespace owt::test {
namespace {

class GpuNccl : public ::testing::Test {
 protected:
  void SetUp() override {
    OWT_SKIP_WITHOUT_GPU();
    gpu_ = make_cuda_backend(0, "fp32-strict");
    world_ = make_local_communicator();
    nccl_ = make_nccl_communicator(*world_, *gpu_);
  }
  void TearDown() override {
    nccl_.reset();  // before the backend and the world it uses
    world_.reset();
  }
  std::unique_ptr<Backend> gpu_;
  std::unique_ptr<Communicator> world_, nccl_;
};

TEST_F(GpuNccl, IsOneRank) {
  EXPECT_EQ(nccl_->name(), "nccl");
  EXPECT_EQ(nccl_->rank(), 0);
  EXPECT_EQ(nccl_->size(), 1);
}

TEST_F(GpuNccl, EveryCollectiveOnDeviceBuffersIsTheIdentity) {
  const size_t n = 1000;
  auto host = random_floats(n, 70);
  Tensor buf = upload(*gpu_, host);
  nccl_->all_reduce(buf.f32(), n);
  EXPECT_EQ(download(*gpu_, buf, n), host) << "all_reduce";
  nccl_->broadcast(buf.f32(), n, 0);
  EXPECT_EQ(download(*gpu_, buf, n), host) << "broadcast";
  nccl_->reduce(buf.f32(), n, 0);
  EXPECT_EQ(download(*gpu_, buf, n), host) << "reduce";

  Tensor out = upload(*gpu_, random_floats(n, 71));
  nccl_->all_gather(buf.f32(), out.f32(), {n});
  EXPECT_EQ(download(*gpu_, out, n), host) << "all_gather";
  Tensor out2 = upload(*gpu_, random_floats(n, 72));
  nccl_->reduce_scatter(buf.f32(), out2.f32(), {n});
  EXPECT_EQ(download(*gpu_, out2, n), host) << "reduce_scatter";
  nccl_->reduce_scatter(buf.f32(), buf.f32(), {n});  // in place
  EXPECT_EQ(download(*gpu_, buf, n), host) << "reduce_scatter in place";
  EXPECT_EQ(nccl_->total_elements_sent(), 0u) << "one rank sends nothing";
}

TEST_F(GpuNccl, AsyncHandlesOrderTheComputeStream) {
  const size_t n = 1 << 20;
  Tensor buf = gpu_->empty(Shape{int64_t(n)});
  gpu_->fill(buf.f32(), n, 2.f);                  // queued on the compute stream ...
  auto h = nccl_->all_reduce_async(buf.f32(), n);  // ... which the comm stream waits for
  h->wait();                                       // the compute stream waits for NCCL
  gpu_->scale(buf.f32(), n, 3.f);
  std::vector<float> got = download(*gpu_, buf, n);
  EXPECT_EQ(got.front(), 6.f);
  EXPECT_EQ(got.back(), 6.f);
  auto h2 = nccl_->broadcast_async(buf.f32(), n, 0);
  const auto t0 = std::chrono::steady_clock::now();
  bool done = false;
  while (!(done = h2->test()) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
  }
  EXPECT_TRUE(done) << "test() never reported the broadcast complete";
  h2->wait();
}

TEST_F(GpuNccl, HostBuffersGoThroughTheWorldCommunicator) {
  std::vector<float> host = random_floats(64, 73), copy = host;
  nccl_->all_reduce(host.data(), host.size());
  EXPECT_EQ(host, copy);
  std::vector<float> out(64);
  nccl_->all_gather(host.data(), out.data(), {64});
  EXPECT_EQ(out, copy);
}

TEST_F(GpuNccl, MixedHostAndDeviceBuffersAreRefused) {
  Tensor dev = upload(*gpu_, random_floats(8, 74));
  std::vector<float> host(8);
  EXPECT_THROW(nccl_->all_gather(dev.f32(), host.data(), {8}), Error);
}

}  // namespace
}  // namespace owt::test
