// The K-worker invariant (docs/ARCHITECTURE.md) under mpirun: K workers with batch b end with
// the same weights as one worker with batch K·b (here computed in-process with the local
// communicator), for both transitions, a model-parallel first layer and --parallel dp, with
// dropout on, and a residual trunk with synchronised BatchNorm; the class shards' merged top-1
// and top-5 counts equal one worker's. Plus: block
// updates train, and the byte counters equal `owt plan`'s prediction.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "owt/comm/make_communicator.h"
#include "owt/core/philox.h"
#include "owt/parallel/cost_model.h"
#include "owt/train/checkpoint.h"
#include "owt/train/evaluate.h"
#include "owt/train/model.h"
#include "support/world_comm.h"

namespace owt {
namespace {

using test::world;

std::string model_text(const std::string& transition, const std::string& fc_update = "step") {
  return "name: inv\n"
         "input: [2, 10, 10]\n"
         "classes: 7\n"
         "data: {format: idx, path: none}\n"
         "layers:\n"
         "  - {name: conv1, type: conv, filters: 6, size: 3, pad: 1}\n"
         "  - {name: relu1, type: relu}\n"
         "  - {name: lrn1, type: lrn, size: 3, alpha: 0.1}\n"
         "  - {name: pool1, type: maxpool, size: 3, stride: 2}\n"
         "  - {name: drop0, type: dropout, rate: 0.2}\n"
         "  - {name: fc1, type: linear, outputs: 13, parallel: model}\n"
         "  - {name: relu2, type: relu}\n"
         "  - {name: drop1, type: dropout, rate: 0.3}\n"
         "  - {name: fc2, type: linear, outputs: 11, parallel: model}\n"
         "  - {name: relu3, type: relu}\n"
         "  - {name: fc3, type: linear, outputs: 7, parallel: model}\n"
         "  - {name: loss, type: softmax_cross_entropy}\n"
         "parallel: {transition: " + transition + ", fc_update: " + fc_update + "}\n"
         "solver: {type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.01, batch: 4, epochs: 1}\n";
}

// No data-parallel stage at all: the transition is the first layer (the input is gathered).
std::string mlp_text(const std::string& transition) {
  return "name: mlp\n"
         "input: [2, 4, 4]\n"
         "classes: 7\n"
         "data: {format: idx, path: none}\n"
         "layers:\n"
         "  - {name: fc1, type: linear, outputs: 12, parallel: model}\n"
         "  - {name: relu1, type: relu}\n"
         "  - {name: drop1, type: dropout, rate: 0.3}\n"
         "  - {name: fc2, type: linear, outputs: 7, parallel: model}\n"
         "  - {name: loss, type: softmax_cross_entropy}\n"
         "parallel: {transition: " + transition + "}\n"
         "solver: {type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.01, batch: 4, epochs: 1}\n";
}

// A residual trunk with BatchNorm (sync, the default) before the transition; with the
// all-gather transition also a BatchNorm1d in the model-parallel stage (every row on every
// worker: its statistics are global without an all-reduce).
std::string residual_text(const std::string& transition) {
  const bool head_bn = transition == "allgather";
  return "name: res\n"
         "input: [2, 10, 10]\n"
         "classes: 7\n"
         "data: {format: idx, path: none}\n"
         "layers:\n"
         "  - {name: conv1, type: conv, filters: 6, size: 3, pad: 1, bias: false}\n"
         "  - {name: bn1, type: batchnorm}\n"
         "  - {name: relu1, type: relu}\n"
         "  - {name: conv2, type: conv, filters: 6, size: 3, pad: 1, bias: false}\n"
         "  - {name: bn2, type: batchnorm, momentum: 0.3}\n"
         "  - {name: sum2, type: add, inputs: [bn2, relu1]}\n"
         "  - {name: relu2, type: relu}\n"
         "  - {name: conv3, type: conv, filters: 4, size: 1, stride: 2, bias: false, inputs: [relu2]}\n"
         "  - {name: bn3, type: batchnorm}\n"
         "  - {name: conv4, type: conv, filters: 4, size: 3, stride: 2, pad: 1, inputs: [relu2]}\n"
         "  - {name: sum3, type: add, inputs: [conv4, bn3]}\n"
         "  - {name: relu4, type: relu}\n"
         "  - {name: fc1, type: linear, outputs: 13, parallel: model}\n" +
         std::string(head_bn ? "  - {name: bnf, type: batchnorm}\n" : "") +
         "  - {name: relu3, type: relu}\n"
         "  - {name: fc2, type: linear, outputs: 7, parallel: model}\n"
         "  - {name: loss, type: softmax_cross_entropy}\n"
         "parallel: {transition: " + transition + "}\n"
         "solver: {type: sgd, lr: 0.02, momentum: 0.9, weight_decay: 0.01, batch: 4, epochs: 1}\n";
}

// The same model with label smoothing on its (class-sharded) loss.
std::string with_label_smoothing(std::string text) {
  const std::string loss = "type: softmax_cross_entropy";
  return text.replace(text.find(loss), loss.size(), loss + ", label_smoothing: 0.1");
}

// One training run: its params after `steps` steps, gathered into whole tensors (host).
struct Trained {
  std::vector<std::vector<float>> params;  // in Network::params() order, full shapes; then
                                           // the buffers (BatchNorm's running statistics)
  std::vector<double> losses;
  std::vector<int64_t> top1, top5;  // per step, over the global batch (the shards' merged top-5)
  double last_step_elements = 0;  // elements this worker sent during the last step
  std::vector<std::string> names;  // of params
};

// Batch s, global row r: deterministic inputs and labels, independent of the worker count.
float input_value(int64_t step, int64_t row, int64_t i) {
  return 2.f * philox_uniform(rng_key(7, Purpose::Test), static_cast<uint32_t>(step),
                              static_cast<uint32_t>(row), static_cast<uint32_t>(i), 0) - 1.f;
}

// `steps` steps; with `same_batch` every step sees batch 0 (so the loss must fall).
Trained train_steps(const ModelConfig& cfg, Communicator& comm, ParallelMode mode, int64_t b,
                    int steps, bool same_batch = false) {
  auto backend = make_cpu_backend();
  const int K = comm.size();
  const int64_t B = b * K;
  Model model(cfg, *backend, comm, mode);
  BatchRows rows = split_rows(B, comm.rank(), K);
  const int64_t per = cfg.net.input.numel();
  Tensor x = backend->empty(cfg.net.input.with_batch(b));
  Tensor y = backend->empty(Shape{B}, DType::I32);
  Trained out;
  for (int s = 0; s < steps; ++s) {
    const int batch = same_batch ? 0 : s;
    std::vector<float> xs(b * per);
    for (int64_t r = 0; r < b; ++r)
      for (int64_t i = 0; i < per; ++i) xs[r * per + i] = input_value(batch, rows.row0() + r, i);
    std::vector<int32_t> labels(B);
    for (int64_t r = 0; r < B; ++r) labels[r] = static_cast<int32_t>((r * 5 + batch) % cfg.net.classes);
    backend->from_host(xs.data(), x.f32(), xs.size() * sizeof(float));
    backend->from_host(labels.data(), y.i32(), B * sizeof(int32_t));
    comm.reset_counters();
    EvalCounts c = model.train_step(x, y, labels.data(), rows, s, cfg.solver.lr);
    out.losses.push_back(c.loss_sum / B);
    out.top1.push_back(c.top1);
    out.top5.push_back(c.top5);
    out.last_step_elements = static_cast<double>(comm.total_elements_sent());
  }
  for (Param* p : model.store().params()) {
    out.params.push_back(gather_whole(*p, p->value, *backend, comm));
    out.names.push_back(p->name);
  }
  for (Param* p : model.store().buffers()) {
    out.params.push_back(gather_whole(*p, p->value, *backend, comm));
    out.names.push_back(p->name);
  }
  return out;
}

void expect_same_training(const std::string& text, ParallelMode mode, int64_t b = 3) {
  ModelConfig cfg = parse_model_config(text, "invariant.yaml");
  const int K = world().size();
  Trained many = train_steps(cfg, world(), mode, b, 5);
  auto local = make_local_communicator();
  Trained one = train_steps(cfg, *local, mode, b * K, 5);
  ASSERT_EQ(many.params.size(), one.params.size());
  for (size_t s = 0; s < one.losses.size(); ++s)
    EXPECT_NEAR(many.losses[s], one.losses[s], 1e-5 * std::abs(one.losses[s])) << "step " << s;
  EXPECT_EQ(many.top1, one.top1) << "top-1 counts from the class shards, against one worker's";
  EXPECT_EQ(many.top5, one.top5) << "top-5 counts from the class shards, against one worker's";
  for (size_t p = 0; p < one.params.size(); ++p) {
    double num = 0, den = 0;
    for (size_t i = 0; i < one.params[p].size(); ++i) {
      num += std::pow(static_cast<double>(many.params[p][i]) - one.params[p][i], 2);
      den += std::pow(static_cast<double>(one.params[p][i]), 2);
    }
    // Relative to the tensor's norm, or to an RMS of 1e-3 where it is smaller: a BatchNorm's
    // bias that starts at 0 and barely moves (the loss is nearly blind to it) holds only
    // rounding noise, which no summation order reproduces.
    const double floor = 1e-6 * static_cast<double>(one.params[p].size());
    double rel = std::sqrt(num / std::max(den, floor));
    EXPECT_LE(rel, 1e-5) << one.names[p] << " differs between " << K << " workers and one";
  }
  // The weights moved, so the comparison means something.
  EXPECT_GT(std::abs(one.losses.front() - one.losses.back()), 1e-4);
}

TEST(Invariant, AllgatherTransitionMatchesOneWorker) {
  expect_same_training(model_text("allgather"), ParallelMode::Owt);
  expect_same_training(with_label_smoothing(model_text("pipelined")), ParallelMode::Owt);
}

TEST(Invariant, PipelinedTransitionMatchesOneWorker) {
  expect_same_training(model_text("pipelined"), ParallelMode::Owt);
}

TEST(Invariant, DataParallelEverywhereMatchesOneWorker) {
  expect_same_training(model_text("allgather"), ParallelMode::DataOnly);
}

TEST(Invariant, ModelParallelFirstLayerMatchesOneWorker) {
  expect_same_training(mlp_text("allgather"), ParallelMode::Owt);
  expect_same_training(mlp_text("pipelined"), ParallelMode::Owt);
}

TEST(Invariant, SyncBatchNormResidualMatchesOneWorker) {
  // Running statistics are among the compared tensors: they must be the global batch's.
  {
    SCOPED_TRACE("allgather");
    expect_same_training(residual_text("allgather"), ParallelMode::Owt);
  }
  {
    SCOPED_TRACE("pipelined");
    expect_same_training(residual_text("pipelined"), ParallelMode::Owt);
  }
  {
    SCOPED_TRACE("data-parallel everywhere");
    expect_same_training(residual_text("allgather"), ParallelMode::DataOnly);
  }
}

TEST(Invariant, BlockUpdatesOnOneWorkerAreStepUpdates) {
  // One worker runs one block, the whole batch: updating after it is updating after the step.
  auto local = make_local_communicator();
  ModelConfig step = parse_model_config(model_text("pipelined", "step"), "step.yaml");
  ModelConfig block = parse_model_config(model_text("pipelined", "block"), "block.yaml");
  Trained a = train_steps(step, *local, ParallelMode::Owt, 6, 3);
  Trained b = train_steps(block, *local, ParallelMode::Owt, 6, 3);
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t p = 0; p < a.params.size(); ++p) EXPECT_EQ(a.params[p], b.params[p]) << "param " << p;
}

TEST(Invariant, BlockUpdatesTrainAndStayFinite) {
  // fc_update: block deliberately differs from one worker (the FC stage updates K times);
  // it must still agree on every worker and train: on a repeated batch the loss falls.
  ModelConfig cfg = parse_model_config(model_text("pipelined", "block"), "invariant.yaml");
  Trained t = train_steps(cfg, world(), ParallelMode::Owt, 3, 12, true);
  for (double l : t.losses) EXPECT_TRUE(std::isfinite(l));
  // Dropout makes single steps noisy: compare the means of the first and last three.
  const double first3 = (t.losses[0] + t.losses[1] + t.losses[2]) / 3;
  const double last3 = (t.losses[9] + t.losses[10] + t.losses[11]) / 3;
  EXPECT_LT(last3, 0.97 * first3) << "the loss did not fall";
  std::vector<float> first = t.params.front();
  std::vector<float> root = first;
  world().broadcast(root.data(), root.size(), 0);
  EXPECT_EQ(root, first) << "replicated conv weights diverged across workers";
}

TEST(Invariant, ByteCountersEqualThePlan) {
  const std::vector<std::pair<std::string, std::string>> models = {
      {"allgather", model_text("allgather")}, {"pipelined", model_text("pipelined")},
      {"residual allgather", residual_text("allgather")},
      {"residual pipelined", residual_text("pipelined")},
      {"label smoothing", with_label_smoothing(model_text("allgather"))}};
  for (const auto& [transition, text] : models) {
    ModelConfig cfg = parse_model_config(text, "invariant.yaml");
    const int K = world().size();
    Trained t = train_steps(cfg, world(), ParallelMode::Owt, 3, 1);
    float sent = static_cast<float>(t.last_step_elements);
    world().all_reduce(&sent, 1);  // summed over ranks; the plan gives the per-worker mean
    PlanReport plan = plan_costs(cfg.net, K, 3, 1e9, 1e12);
    EXPECT_NEAR(sent / K, plan.hybrid_total, 1e-6 * plan.hybrid_total + 1e-3) << transition;
  }
}

}  // namespace
}  // namespace owt
