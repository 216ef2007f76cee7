// One training step on the CUDA backend against the CPU backend, on several seeds of init and
// batch: the small AlexNet-shaped model of train_step_check.h, identical Philox init on both;
// the loss and every parameter's update must agree within step_bounds(precision), bounds that
// CPU emulations of each precision's rounding meet on every seed tried
// (host/step_bounds_test.cpp). Also the same step through a K = 1 NCCL communicator, which
// must match the step through the local one. Skipped without a CUDA device (failed under
// OWT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "owt/comm/nccl_communicator.h"
#include "train_step_check.h"

namespace owt::test {
namespace {

constexpr uint32_t kSeeds[] = {1, 2, 3, 4, 5, 6};

class GpuTrainStep : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuTrainStep, MatchesTheCpuBackendOnEverySeed) {
  OWT_SKIP_WITHOUT_GPU();
  const std::string precision = GetParam();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0, precision);  // one backend: later seeds reuse its plans
  for (uint32_t seed : kSeeds) {
    StepResult want = one_step(*cpu, seed), got = one_step(*gpu, seed);
    EXPECT_TRUE(step_agrees(got, want, step_bounds(precision)))
        << precision << ", seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, GpuTrainStep, kStepPrecisions, precision_test_name);

// The step through NCCL (K = 1: every collective an in-place identity or a device copy, on the
// communicator's own stream) equals the step through the local communicator up to cuDNN's
// non-deterministic algorithms, i.e. within fp32-strict's bounds. The step skips most
// collectives at K = 1 (gradient buckets, the transition); nccl_gpu_test.cpp runs every one.
TEST(GpuNcclStep, OneWorkerThroughNcclMatchesTheLocalCommunicator) {
  OWT_SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(0, "fp32-strict");
  auto world = make_local_communicator();
  auto nccl = make_nccl_communicator(*world, *gpu);
  ASSERT_EQ(nccl->name(), "nccl");
  ASSERT_EQ(nccl->size(), 1);
  StepResult local = one_step(*gpu, 7), through_nccl = one_step(*gpu, 7, nccl.get());
  EXPECT_TRUE(step_agrees(through_nccl, local, step_bounds("fp32-strict")));
}

}  // namespace
}  // namespace owt::test
