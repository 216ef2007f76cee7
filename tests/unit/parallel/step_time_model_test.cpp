// The step-time model (parallel/step_time_model.h): the timeline's overlap rules, a
// data-parallel step worked by hand with and without overlap, and the collectives it walks
// through equal, element for element, what the cost model (and so the communicators) count.
#include <gtest/gtest.h>

#include "owt/parallel/cost_model.h"
#include "owt/parallel/network.h"
#include "owt/parallel/step_time_model.h"
#include "owt/train/model_config.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

TEST(StepTimeline, AsyncCollectivesOverlapComputeByTheMeasuredShare) {
  // compute 3, an async collective of 2, compute 1, a blocking one of 1, wait.
  StepTimeline full(1.0);
  full.compute(3);
  size_t h = full.launch(2);  // on the link 3..5
  full.compute(1);            // clock 4
  full.blocking(1);           // waits for the link: 5..6
  full.wait(h);
  EXPECT_DOUBLE_EQ(full.now(), 6);
  EXPECT_DOUBLE_EQ(full.compute_seconds(), 4);
  EXPECT_DOUBLE_EQ(full.comm_seconds(), 3);

  StepTimeline none(0.0);  // nothing moves until the wait: 3 + 1 + 1, then the 2
  none.compute(3);
  h = none.launch(2);
  none.compute(1);
  none.blocking(1);
  none.wait(h);
  EXPECT_DOUBLE_EQ(none.now(), 7);

  StepTimeline half(0.5);  // 1 on the link (3..4) hidden, 1 at the wait
  half.compute(3);
  h = half.launch(2);
  half.compute(1);
  half.wait(h);
  EXPECT_DOUBLE_EQ(half.now(), 5);
  half.wait(h);  // a second wait costs nothing
  EXPECT_DOUBLE_EQ(half.now(), 5);
}

// A calibration at 2 workers whose op time is alpha + beta x bytes for every size (two
// measured points on that line; the model interpolates between them).
CommCalibration line_calibration(double alpha, double beta, double overlap) {
  CommCalibration c;
  c.file = "test";
  c.communicator = "test";
  c.workers = 2;
  c.overlap = overlap;
  for (CommOp op : {CommOp::AllReduce, CommOp::AllGather, CommOp::ReduceScatter, CommOp::Broadcast,
                    CommOp::Reduce}) {
    CommOpTimings t;
    t.op = op;
    t.points = {{1, alpha + beta}, {1e12, alpha + beta * 1e12}};
    t.fit = {alpha, beta};
    c.ops.push_back(t);
  }
  return c;
}

// 64 features -> fc0 (4096) -> fc1 (2048) -> fc2 (10): fc1's 8.4M gradient fills one 25 MiB
// bucket as soon as its backward ends, while relu0 and fc0 still have theirs to run.
const char* kMlp = R"(
name: mlp
input: [1, 8, 8]
classes: 10
layers:
  - {name: fc0, type: linear, outputs: 4096}
  - {name: relu0, type: relu}
  - {name: fc1, type: linear, outputs: 2048}
  - {name: relu1, type: relu}
  - {name: fc2, type: linear, outputs: 10}
  - {name: loss, type: softmax_cross_entropy}
)";

StepProfile mlp_profile() {
  StepProfile p;
  p.file = "profile";
  p.model = "mlp";
  p.batch = 8;
  p.layers = {{"fc0", 0.004, 0.003}, {"relu0", 0.001, 0.002}, {"fc1", 0.010, 0.020},
              {"relu1", 0.001, 0.001}, {"fc2", 0.001, 0.002}, {"loss", 0.0005, 0.0005}};
  p.step_seconds = 0.046 + 0.002;  // the layers and 2 ms of update
  return p;
}

TEST(StepTimeModel, DataParallelStepWorkedByHand) {
  ModelConfig cfg = parse_model_config(kMlp, "mlp.yaml", ModelParts::Network);
  const StepProfile profile = mlp_profile();
  const double alpha = 1e-4, beta = 1e-9;  // 0.1 ms, 1 GB/s
  auto ar = [&](double elements) { return alpha + beta * 4 * elements; };
  const double bucket = 25 * (1 << 20) / 4;                    // 6553600 elements
  // Every param in whole 64-float slots: fc2's bias of 10 takes 64 (8677440 elements).
  const double grads = 64 * 4096 + 4096 + 4096 * 2048 + 2048 + 2048 * 10 + 64;
  // Until fc1's backward ends: every forward, the loss, fc2, relu1 and fc1 backward (batch 8
  // per worker, as profiled: no scaling).
  const double t_a = (0.004 + 0.001 + 0.010 + 0.001 + 0.001) + (0.0005 + 0.0005) + 0.002 + 0.001 + 0.020;
  const double rest_of_backward = 0.002 + 0.003;  // relu0, fc0
  const double first = ar(bucket), tail = ar(grads - bucket), sums = ar(3), update = 0.002;
  ASSERT_GT(first, rest_of_backward) << "the case is meant to be link-bound";

  // Full overlap: the first bucket runs under relu0 and fc0's backward; the tail waits for it.
  StepPrediction p = predict_step(cfg.net, 2, 8, ParallelMode::DataOnly, profile,
                                  line_calibration(alpha, beta, 1.0));
  EXPECT_NEAR(p.seconds, t_a + first + tail + sums + update, 1e-12);
  EXPECT_NEAR(p.compute, 0.046 + update, 1e-12);
  EXPECT_NEAR(p.comm, first + tail + sums, 1e-12);

  // No overlap: every collective adds its whole time.
  p = predict_step(cfg.net, 2, 8, ParallelMode::DataOnly, profile, line_calibration(alpha, beta, 0.0));
  EXPECT_NEAR(p.seconds, 0.046 + first + tail + sums + update, 1e-12);

  // One worker at twice the batch: twice each layer's time, the same update, no collectives.
  p = predict_step(cfg.net, 1, 16, ParallelMode::DataOnly, profile, line_calibration(alpha, beta, 0.0));
  EXPECT_NEAR(p.seconds, 2 * 0.046 + update, 1e-12);
}

TEST(StepTimeModel, HybridScalesTheModelParallelStageByRowsAndShard) {
  // Hybrid at K = 2, 8 rows per worker, free link. The plan (`owt plan`): fc0 column-parallel
  // (output shard), relu0 on the shard, fc1 row-parallel (whole outputs), relu1, fc2
  // column-parallel into the sharded loss. Every layer sees all 16 rows: fc0, relu0, fc1, fc2
  // and the loss do half the work per row, so take the profile's time; relu1 acts on whole
  // 2048-wide rows, twice its profile (2 ms -> 4 ms). The update scales with the local params:
  // fc0 2048x64 + 2048, fc1 2048x2048 + its replicated bias 2048, fc2 5x2048 + 5.
  ModelConfig cfg = parse_model_config(kMlp, "mlp.yaml", ModelParts::Network);
  const StepProfile profile = mlp_profile();
  StepPrediction p = predict_step(cfg.net, 2, 8, ParallelMode::Owt, profile, line_calibration(0, 0, 1.0));
  EXPECT_EQ(p.comm, 0);
  const double local = 2048 * 64 + 2048 + 2048 * 2048 + 2048 + 5 * 2048 + 5;
  const double all = 64 * 4096 + 4096 + 4096 * 2048 + 2048 + 2048 * 10 + 10;
  EXPECT_NEAR(p.seconds, 0.046 + 0.002 + 0.002 * local / all, 1e-12);
}

TEST(StepTimeModel, BlockUpdatesPayTheModelStagesUpdateOncePerBlock) {
  // fc_update: block at K = 2: the model-parallel stage (all of the MLP) updates after each of
  // the 2 pipelined blocks instead of once: one more update of its local params.
  ModelConfig cfg = parse_model_config(kMlp, "mlp.yaml", ModelParts::Network);
  cfg.net.parallel.transition = Transition::Pipelined;
  const StepProfile profile = mlp_profile();
  const double step = predict_step(cfg.net, 2, 8, ParallelMode::Owt, profile, line_calibration(0, 0, 1.0)).seconds;
  cfg.net.parallel.fc_update = FcUpdate::Block;
  const double block = predict_step(cfg.net, 2, 8, ParallelMode::Owt, profile, line_calibration(0, 0, 1.0)).seconds;
  const double local = 2048 * 64 + 2048 + 2048 * 2048 + 2048 + 5 * 2048 + 5;
  const double all = 64 * 4096 + 4096 + 4096 * 2048 + 2048 + 2048 * 10 + 10;
  EXPECT_NEAR(block - step, 0.002 * local / all, 1e-12);
}

// Seconds per byte that make each op's time its ring cost in elements at K = 2 (cost_model.h):
// all-reduce of n: n (4n bytes); all-gather of a total n: n/2 (each rank gives 2n bytes);
// reduce-scatter the same; broadcast and reduce of n: n/2 (4n bytes).
CommCalibration elements_calibration() {
  CommCalibration c = line_calibration(0, 0.25, 1.0);
  for (CommOpTimings& t : c.ops)
    if (t.op == CommOp::Broadcast || t.op == CommOp::Reduce)
      for (CommPoint& p : t.points) p.seconds /= 2;
  return c;
}

TEST(StepTimeModel, CollectivesWalkedAreTheCostModelsElementForElement) {
  const CommCalibration elements = elements_calibration();
  for (const char* model : {"fmnist", "alexnet_owt", "extreme_100k"})
    for (const char* transition : {"allgather", "pipelined"}) {
      ModelConfig cfg = load_model_config(cat(OWT_SOURCE_DIR, "/models/", model, ".yaml"), ModelParts::Network);
      cfg.net.parallel.transition = std::string(transition) == "allgather" ? Transition::Allgather
                                                                           : Transition::Pipelined;
      StepProfile profile;
      profile.file = "profile";
      profile.batch = 16;
      profile.step_seconds = 0;
      owt::Network one(cfg.net, 0, 1, ParallelMode::Owt);
      for (size_t i = 0; i < one.size(); ++i) profile.layers.push_back({one.layer(i).name(), 0, 0});
      const PlanReport r = plan_costs(cfg.net, 2, 16, 1, 1);
      EXPECT_NEAR(predict_step(cfg.net, 2, 16, ParallelMode::Owt, profile, elements).comm, r.hybrid_total,
                  1e-9 * r.hybrid_total) << model << " " << transition;
      EXPECT_NEAR(predict_step(cfg.net, 2, 16, ParallelMode::DataOnly, profile, elements).comm,
                  r.data_parallel_total, 1e-9 * r.data_parallel_total) << model << " " << transition;
    }
}

TEST(StepTimeModel, ProfileFromAnotherModelIsRefusedByName) {
  ModelConfig cfg = parse_model_config(kMlp, "mlp.yaml", ModelParts::Network);
  StepProfile profile = mlp_profile();
  profile.layers.erase(profile.layers.begin() + 2);  // no fc1
  expect_error([&] { predict_step(cfg.net, 2, 8, ParallelMode::Owt, profile, line_calibration(0, 0, 1)); },
               {"profile", "no layer 'fc1'"});
}

TEST(StepProfileFile, LoadsBenchJsonAndRefusesSeveralWorkers) {
  TempDir dir;
  const std::string good = dir.write("p.json",
      R"({"model": "mlp", "workers": 1, "batch": 8, "median_ms_per_step": 48.0, "images_per_s": 1,
          "layers": [{"name": "fc0", "type": "linear", "forward_ms": 4.0, "backward_ms": 3.0}]})");
  StepProfile p = load_step_profile(good);
  EXPECT_EQ(p.batch, 8);
  EXPECT_DOUBLE_EQ(p.of("fc0").backward, 0.003);
  EXPECT_DOUBLE_EQ(p.other_seconds(), 0.041);
  const std::string two = dir.write("two.json",
      R"({"model": "mlp", "workers": 2, "batch": 8, "median_ms_per_step": 48.0, "layers": []})");
  expect_error([&] { load_step_profile(two); }, {"two.json:1", "workers", "one worker"});
  const std::string bare = dir.write("bare.json",
      R"({"model": "mlp", "workers": 1, "batch": 8, "median_ms_per_step": 48.0})");
  expect_error([&] { load_step_profile(bare); }, {"bare.json", "layers", "--profile"});
}

}  // namespace
}  // namespace owt::test
