// The memory model (parallel/memory_model.h) on small networks worked by hand: every param's
// shard, gradient and momentum at K = 1, 2, 3 with uneven shards and under --parallel dp; the
// step's activations, input gradients and transition buffers for both transitions; the MPI
// buffers, the checkpoint's pieces and the largest worker.
#include <gtest/gtest.h>

#include <string>

#include "owt/nn/param.h"
#include "owt/parallel/memory_model.h"
#include "owt/parallel/network.h"
#include "owt/train/model_config.h"

namespace owt::test {
namespace {

// input (1, 4, 4) -> c1 (2, 4, 4): 18 + 2 params, replicated -> r1 in place -> fc1 (5) of
// 32 inputs: 160 + 5, column-parallel and gathered -> fc2 (7): 35 + 7, column-parallel, a class
// shard for the loss. 5 and 7 do not divide by 2 or 3: fc1 rows 2|3 and 1|2|2, fc2 rows 3|4
// and 2|2|3. The store gives every param whole 64-float slots (P below), which at this size
// is most of it.
std::string net_text(const std::string& transition, bool conv = true) {
  return std::string("name: m\ninput: [1, 4, 4]\nclasses: 7\nlayers:\n") +
         (conv ? "  - {name: c1, type: conv, filters: 2, size: 3, pad: 1}\n"
                 "  - {name: r1, type: relu}\n"
               : "") +
         "  - {name: fc1, type: linear, outputs: 5, split: output}\n"
         "  - {name: fc2, type: linear, outputs: 7, split: output}\n"
         "  - {name: loss, type: softmax_cross_entropy}\n"
         "parallel: {transition: " + transition + "}\n";
}

NetworkSpec spec_of(const std::string& transition, bool conv = true) {
  return parse_model_config(net_text(transition, conv), "m.yaml", ModelParts::Network).net;
}

MemoryRun run_of(int workers, ParallelMode mode = ParallelMode::Owt) {
  MemoryRun run;
  run.workers = workers;
  run.batch = 3;
  run.mode = mode;
  return run;
}

constexpr int64_t F = 4;  // bytes per float
int64_t P(int64_t n) { return padded_numel(n); }  // floats a param of n takes in the store
const int64_t kConv = P(18) + P(2);               // c1, replicated on every worker
const int64_t kAll = kConv + P(160) + P(5) + P(35) + P(7);  // every param, unsharded

TEST(MemoryModel, ParamsGradsAndMomentumOfEachShard) {
  const NetworkSpec spec = spec_of("allgather");
  struct Case {
    int workers, rank;
    int64_t floats;
  };
  // conv on every worker; fc1 (rows x 32 + rows); fc2 (rows x 5 + rows).
  const Case cases[] = {{1, 0, kAll},
                        {2, 0, kConv + P(64) + P(2) + P(15) + P(3)},
                        {2, 1, kConv + P(96) + P(3) + P(20) + P(4)},
                        {3, 0, kConv + P(32) + P(1) + P(10) + P(2)},
                        {3, 1, kConv + P(64) + P(2) + P(10) + P(2)},
                        {3, 2, kConv + P(64) + P(2) + P(15) + P(3)}};
  for (const Case& c : cases) {
    const MemoryEstimate m = estimate_memory(spec, run_of(c.workers), c.rank);
    EXPECT_EQ(m.parameters, c.floats * F) << "K = " << c.workers << ", rank " << c.rank;
    EXPECT_EQ(m.gradients, c.floats * F) << "K = " << c.workers << ", rank " << c.rank;
    EXPECT_EQ(m.optimizer_state, c.floats * F) << "K = " << c.workers << ", rank " << c.rank;
  }
  for (int K : {1, 2, 3})
    for (int r = 0; r < K; ++r) {
      const MemoryEstimate dp = estimate_memory(spec, run_of(K, ParallelMode::DataOnly), r);
      EXPECT_EQ(dp.parameters, kAll * F);
      EXPECT_EQ(dp.gradients, kAll * F);
      EXPECT_EQ(dp.optimizer_state, kAll * F);
    }
}

TEST(MemoryModel, TheLargestWorkerHoldsTheWidestShards) {
  const MemoryEstimate m = estimate_memory_largest(spec_of("allgather"), run_of(3));
  EXPECT_EQ(m.rank, 2);
  EXPECT_EQ(m.parameters, (kConv + P(64) + P(2) + P(15) + P(3)) * F);
}

TEST(MemoryModel, StepBuffersOfTheAllgatherTransition) {
  // K = 2, b = 3, B = 6, rank 0 (fc1 rows 2, fc2 rows 3).
  const MemoryEstimate m = estimate_memory(spec_of("allgather"), run_of(2), 0);
  // input (3, 1, 4, 4), c1 (3, 2, 4, 4), r1 in place, fc1 gathered (6, 5), fc2 shard (6, 3).
  EXPECT_EQ(m.activations, (48 + 96 + 30 + 18) * F);
  // dx of fc2 (6, 5) and of fc1 (6, 32) in the two buffers; r1 runs in place and c1, the
  // first layer, has no dx; dlogits (6, 3).
  EXPECT_EQ(m.activation_grads, (30 + 192 + 18) * F);
  // gathered rows (6, 32) and this worker's rows of their gradient (3, 32).
  EXPECT_EQ(m.transition, (192 + 96) * F);
  // c1's gradient is summed over the workers: one copy in MPI's all-reduce.
  EXPECT_EQ(m.communication, kConv * F);
  ASSERT_FALSE(m.largest.empty());
  for (size_t i = 1; i < m.largest.size(); ++i) EXPECT_GE(m.largest[i - 1].bytes, m.largest[i].bytes);
  EXPECT_EQ(m.peak(), m.parameters + m.gradients + m.optimizer_state + m.activation_total() +
                          m.data_loader + m.communication + m.transient() + m.runtime);

  const MemoryEstimate r1 = estimate_memory(spec_of("allgather"), run_of(2), 1);  // fc2 rows 4
  EXPECT_EQ(r1.activations, (48 + 96 + 30 + 24) * F);
  EXPECT_EQ(r1.activation_grads, (30 + 192 + 24) * F);
}

TEST(MemoryModel, StepBuffersOfThePipelinedTransition) {
  const MemoryEstimate m = estimate_memory(spec_of("pipelined"), run_of(2), 0);
  EXPECT_EQ(m.activations, (48 + 96 + 30 + 18) * F);  // evaluation gathers all 6 rows
  // Backward runs one block of 3 rows: dx of fc2 (3, 5), of fc1 (3, 32), dlogits (3, 3).
  EXPECT_EQ(m.activation_grads, (15 + 96 + 9) * F);
  // gathered (6, 32), own gradient (3, 32), two blocks (3, 32), staging (6, 32).
  EXPECT_EQ(m.transition, (192 + 96 + 2 * 96 + 192) * F);
  // The K block gradients being reduced (6, 32), and c1's all-reduce.
  EXPECT_EQ(m.communication, (192 + kConv) * F);
}

TEST(MemoryModel, OneWorkerGathersNothing) {
  const MemoryEstimate m = estimate_memory(spec_of("allgather"), run_of(1), 0);
  EXPECT_EQ(m.activations, (48 + 96 + 15 + 21) * F);
  EXPECT_EQ(m.transition, 96 * F);  // only the gradient of its rows (3, 32)
  EXPECT_EQ(m.communication, 0);
  EXPECT_EQ(m.initialization, 160 * F);  // fc1.weight staged on the host
}

TEST(MemoryModel, DataParallelKeepsEveryRowLocal) {
  const MemoryEstimate m = estimate_memory(spec_of("allgather"), run_of(2, ParallelMode::DataOnly), 1);
  EXPECT_EQ(m.activations, (48 + 96 + 15 + 21) * F);
  EXPECT_EQ(m.activation_grads, (15 + 96 + 21) * F);
  EXPECT_EQ(m.transition, 0);
  EXPECT_EQ(m.communication, kAll * F);  // every gradient is all-reduced
}

TEST(MemoryModel, LayerScratchAndTheLossHostCopy) {
  // No conv: fc1 is the transition. K = 2, rank 0, B = 6 rows in the model-parallel stage.
  const MemoryEstimate m = estimate_memory(spec_of("allgather", false), run_of(2), 0);
  // fc1 gathers columns: its own (6, 2) and all (6, 5); the loss keeps max, sum-exp and target
  // on the device and the host, (6) each.
  EXPECT_EQ(m.scratch, (6 * 7 + 6 * 6) * F);
  // The loss's host copy of its shard (6, 3) and index (3), candidates (6, 5, 2) x 3, the
  // gathered (max, sum-exp) pairs 2 x 6 x 3.
  EXPECT_EQ(m.step_host, (18 + 3 + 180 + 36) * F);
}

TEST(MemoryModel, ConvolutionsOfOneGeometryShareTheirScratch) {
  // The CPU backend keeps one oneDNN plan, with its buffers, per geometry: c2 repeats c1's
  // (2 -> 2 channels, 3x3, 4x4), c3 does not (3 filters), so two scratches count, not three.
  auto spec_with = [](const std::string& c3_filters) {
    return parse_model_config(
               "name: m\ninput: [2, 4, 4]\nclasses: 7\nlayers:\n"
               "  - {name: c1, type: conv, filters: 2, size: 3, pad: 1}\n"
               "  - {name: c2, type: conv, filters: 2, size: 3, pad: 1}\n"
               "  - {name: c3, type: conv, filters: " + c3_filters + ", size: 3, pad: 1}\n"
               "  - {name: fc, type: linear, outputs: 7, parallel: data}\n"
               "  - {name: loss, type: softmax_cross_entropy}\n",
               "m.yaml", ModelParts::Network).net;
  };
  Network net(spec_with("3"), 0, 1, ParallelMode::Owt);
  const int64_t c1 = net.layer(0).scratch_bytes(3), c3 = net.layer(2).scratch_bytes(3);
  ASSERT_GT(c1, 0);
  EXPECT_EQ(net.layer(0).scratch_key(3), net.layer(1).scratch_key(3));
  EXPECT_NE(net.layer(0).scratch_key(3), net.layer(2).scratch_key(3));
  const int64_t fc_and_loss = net.layer(3).scratch_bytes(3) + net.layer(4).scratch_bytes(3);
  EXPECT_EQ(estimate_memory(spec_with("3"), run_of(1), 0).scratch, c1 + c3 + fc_and_loss);
  // With c3 like the others, one scratch serves all three.
  EXPECT_EQ(estimate_memory(spec_with("2"), run_of(1), 0).scratch, c1 + fc_and_loss);
}

TEST(MemoryModel, CheckpointPiecesOnRankZeroAndTheOthers) {
  MemoryRun run = run_of(2);
  // Default chunk: fc1.weight (5, 32) is one block of both workers' rows: rank 0 receives
  // pieces of up to 3 x 32 in two buffers and assembles 160; rank 1 sends its 3 x 32 once.
  EXPECT_EQ(estimate_memory(spec_of("allgather"), run, 0).checkpoint, (2 * 96 + 160) * F);
  EXPECT_EQ(estimate_memory(spec_of("allgather"), run, 1).checkpoint, 96 * F);
  // A 16-float chunk: rows of 160 are cut into runs of 16, two in flight on either side.
  run.checkpoint_chunk = 16 * F;
  EXPECT_EQ(estimate_memory(spec_of("allgather"), run, 0).checkpoint, 2 * 16 * F);
  EXPECT_EQ(estimate_memory(spec_of("allgather"), run, 1).checkpoint, 2 * 16 * F);
}

TEST(MemoryModel, RuntimeGrowsWithThreadsAndMpi) {
  EXPECT_LT(runtime_bytes(1, 1), runtime_bytes(8, 1));
  EXPECT_LT(runtime_bytes(1, 1), runtime_bytes(1, 2));
  EXPECT_EQ(runtime_bytes(1, 2), runtime_bytes(1, 4));
}

}  // namespace
}  // namespace owt::test
