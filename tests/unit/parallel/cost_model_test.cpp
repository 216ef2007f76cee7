// The cost model of `owt plan` (docs/ARCHITECTURE.md, "Communication and costs"): Dettmers' worked example exactly, the ring
// conventions the communicators count by, and a whole model's hybrid total.
#include <gtest/gtest.h>

#include "owt/parallel/cost_model.h"
#include "owt/train/model_config.h"

namespace owt::test {
namespace {

TEST(CostModel, DettmersWorkedExample) {
  // Batch 128, a 1000x500 weight (PyTorch layout (out, in): 500 inputs, 1000 outputs), 2 workers.
  LinearCosts c = linear_costs(128, 500, 1000, false, 2);
  EXPECT_DOUBLE_EQ(c.data_parallel, 500000);  // all-reduce of the weight gradient
  EXPECT_DOUBLE_EQ(c.split_output, 128000);   // outputs stacked: 64000 gathered + 64000 reduced
  EXPECT_DOUBLE_EQ(c.split_input, 160000);    // outputs added: 128000 reduced + 32000 gathered
}

TEST(CostModel, RingConventionsAndOneWorker) {
  EXPECT_DOUBLE_EQ(all_reduce_cost(1200, 4), 1800);
  EXPECT_DOUBLE_EQ(all_gather_cost(1200, 4), 900);
  EXPECT_DOUBLE_EQ(reduce_scatter_cost(1200, 3), 800);
  EXPECT_DOUBLE_EQ(broadcast_cost(1200, 4), 900);
  EXPECT_DOUBLE_EQ(reduce_cost(1200, 2), 600);
  for (double v : {all_reduce_cost(7, 1), all_gather_cost(7, 1), broadcast_cost(7, 1)}) EXPECT_EQ(v, 0);
  LinearCosts one = linear_costs(128, 500, 1000, true, 1);
  EXPECT_EQ(one.data_parallel + one.split_output + one.split_input, 0);
}

TEST(CostModel, FmnistPlanMovesLessThanDataParallel) {
  ModelConfig cfg = load_model_config(OWT_SOURCE_DIR "/models/fmnist.yaml");
  PlanReport one = plan_costs(cfg.net, 1, 128, 1e10, 1e12);
  EXPECT_EQ(one.hybrid_total, 0);
  EXPECT_EQ(one.data_parallel_total, 0);
  PlanReport two = plan_costs(cfg.net, 2, 64, 1e10, 1e12);
  // Conv gradients all-reduced, each param in whole 64-float slots (conv1 800 + 32 -> 832 + 64,
  // conv2 51200 + 64), the pipelined transition (64 rows x 3136, each way, over 2 blocks), fc2
  // row-parallel (128 x 10 all-reduced): as `owt train` measured.
  EXPECT_DOUBLE_EQ(two.hybrid_total, 454848);
  EXPECT_GT(two.data_parallel_total, 3e6);  // every FC weight all-reduced
  EXPECT_GT(two.speedup, 1.0);
  EXPECT_DOUBLE_EQ(two.train_flops_one_worker, 2 * two.train_flops_per_worker)
      << "FLOPs split evenly over 2 workers";
}

TEST(CostModel, Vgg16HasTorchvisionsParametersAndItsHeadDominatesDataParallelTraffic) {
  ModelConfig cfg = load_model_config(OWT_SOURCE_DIR "/models/vgg16_owt.yaml");
  PlanReport r = plan_costs(cfg.net, 8, 32, 1e10, 1e12);
  int64_t params = 0, fc = 0;
  for (const LayerCost& c : r.layers) {
    params += c.params;
    if (c.type == "linear") fc += c.params;
  }
  EXPECT_EQ(params, 138357544) << "torchvision.models.vgg16: 138,357,544 parameters";
  EXPECT_EQ(fc, 102764544 + 16781312 + 4097000);  // fc6 25088x4096, fc7, fc8 with biases
  EXPECT_GT(r.data_parallel_total, 5 * r.hybrid_total);
}

}  // namespace
}  // namespace owt::test
