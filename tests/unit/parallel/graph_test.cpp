// Graph model files (`inputs:`): the checks Network makes when it loads one (file:line errors),
// the gradient slots of backward (a chain ping-pongs; a residual output sums its gradients),
// and a whole residual network's gradient through HybridStep against central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "owt/comm/communicator.h"
#include "owt/core/philox.h"
#include "owt/nn/init.h"
#include "owt/nn/param_store.h"
#include "owt/parallel/hybrid_step.h"
#include "owt/parallel/network.h"
#include "owt/parallel/run_order.h"
#include "owt/train/evaluate.h"
#include "owt/train/model_config.h"
#include "support/expect_error.h"

namespace owt::test {
namespace {

// A model file whose layer i (0-based) is on line 6 + i; (1, 6, 6) inputs, 5 classes.
std::string model_text(const std::vector<std::string>& layers) {
  std::string t = "name: g\ninput: [1, 6, 6]\nclasses: 5\ndata: {path: /nonexistent}\nlayers:\n";
  for (const std::string& l : layers) t += "  - " + l + "\n";
  return t + "solver: {lr: 0.1, batch: 4, epochs: 1}\n";
}

Network build(const std::vector<std::string>& layers, int workers = 1,
              ParallelMode mode = ParallelMode::Owt) {
  return Network(parse_model_config(model_text(layers), "g.yaml").net, 0, workers, mode);
}

// conv1 -> relu1 -> conv2 -> relu2 -> sum(relu2, relu1) -> relu3 -> pool -> fc -> loss: relu1's
// output feeds conv2 and the sum, so its gradient is the sum of two.
const std::vector<std::string> kResidual = {
    "{name: conv1, type: conv, filters: 3, size: 3, pad: 1}",  // line 6
    "{name: relu1, type: relu}",                              // line 7
    "{name: conv2, type: conv, filters: 3, size: 3, pad: 1}",  // line 8
    "{name: relu2, type: relu}",                              // line 9
    "{name: sum, type: add, inputs: [relu2, relu1]}",          // line 10
    "{name: relu3, type: relu}",                              // line 11
    "{name: pool, type: global_avgpool}",                     // line 12
    "{name: fc, type: linear, outputs: 5}",                   // line 13
    "{name: loss, type: softmax_cross_entropy}",              // line 14
};

std::vector<std::string> with(std::vector<std::string> layers, size_t i, const std::string& l) {
  layers[i] = l;
  return layers;
}

TEST(Graph, InputsResolveAndCountConsumers) {
  Network net = build(kResidual);
  EXPECT_EQ(net.inputs_of(0), std::vector<size_t>{Network::kNetworkInput});
  EXPECT_EQ(net.inputs_of(2), std::vector<size_t>{1});
  EXPECT_EQ(net.inputs_of(4), (std::vector<size_t>{3, 1}));
  EXPECT_EQ(net.consumers_of(1), 2u);
  EXPECT_EQ(net.consumers_of(3), 1u);
  EXPECT_EQ(net.output_shape(4), (Shape{3, 6, 6}));
  EXPECT_EQ(net.output_shape(6), (Shape{3}));
  // relu1 feeds two layers: relu2 may not overwrite it; relu3 may overwrite the sum.
  const std::vector<bool> in_place = in_place_layers(net);
  EXPECT_TRUE(in_place[5]);
  EXPECT_FALSE(in_place[4]);
}

TEST(Graph, ErrorsNameTheLine) {
  expect_error([] { build(with(kResidual, 4, "{name: sum, type: add, inputs: [relu2, nope]}")); },
               {"g.yaml:10", "no layer is named 'nope'"});
  expect_error([] { build(with(kResidual, 4, "{name: sum, type: add, inputs: [relu2, relu3]}")); },
               {"g.yaml:10", "'relu3' is not an earlier layer", "cycles"});
  expect_error([] { build(with(kResidual, 4, "{name: sum, type: add, inputs: [relu2, relu2]}")); },
               {"g.yaml:10", "named twice"});
  expect_error([] { build(with(kResidual, 4, "{name: sum, type: add, inputs: relu2}")); },
               {"g.yaml:10", "inputs"});
  expect_error([] { build(with(kResidual, 5, "{name: relu3, type: relu, inputs: [sum, relu1]}")); },
               {"g.yaml:11", "relu layer takes one input"});
  expect_error([] { build(with(kResidual, 8, "{name: loss, type: softmax_cross_entropy, inputs: [fc]}")); },
               {"g.yaml:14", "loss takes the layer before it"});
  // An add of (3, 6, 6) and (4, 6, 6).
  expect_error([] { build(with(kResidual, 2, "{name: conv2, type: conv, filters: 4, size: 3, pad: 1}")); },
               {"g.yaml:10", "shape"});
  // An add with one input (the previous layer by default).
  expect_error([] { build(with(kResidual, 4, "{name: sum, type: add}")); }, {"g.yaml:10"});
  // relu2's output read by nobody: the sum takes conv2 and relu1.
  expect_error([] { build(with(kResidual, 4, "{name: sum, type: add, inputs: [conv2, relu1]}")); },
               {"g.yaml:9", "relu2", "used by no layer"});
}

TEST(Graph, ModelParallelLayerInsideAResidualBranchIsRefused) {
  // fc1 is model-parallel by default; the sum after it takes rows from before the transition.
  const std::vector<std::string> layers = {
      "{name: fc0, type: linear, outputs: 8, parallel: data}",  // line 6
      "{name: relu0, type: relu}",                              // line 7
      "{name: fc1, type: linear, outputs: 8}",                  // line 8
      "{name: sum, type: add, inputs: [fc1, relu0]}",           // line 9
      "{name: fc2, type: linear, outputs: 5}",                  // line 10
      "{name: loss, type: softmax_cross_entropy}",              // line 11
  };
  expect_error([&] { build(layers, 2); }, {"g.yaml:9", "residual branch", "fc1"});
  // All data-parallel, it is an ordinary graph.
  EXPECT_NO_THROW(build(layers, 2, ParallelMode::DataOnly));
}

TEST(Graph, BatchNormAfterTheTransitionNeedsTheWholeBatch) {
  // A BatchNorm1d after a model-parallel linear: every worker holds every row with allgather,
  // but the pipelined transition runs that stage one worker's block at a time.
  auto text = [](const std::string& transition) {
    return "name: g\ninput: [2, 2, 2]\nclasses: 5\nlayers:\n"
           "  - {name: fc1, type: linear, outputs: 8}\n"           // line 5
           "  - {name: bn, type: batchnorm}\n"                      // line 6
           "  - {name: fc2, type: linear, outputs: 5}\n"            // line 7
           "  - {name: loss, type: softmax_cross_entropy}\n"
           "parallel: {transition: " + transition + "}\n";
  };
  auto build_text = [](const std::string& t) {
    return Network(parse_model_config(t, "g.yaml", ModelParts::Network).net, 0, 2, ParallelMode::Owt);
  };
  expect_error([&] { build_text(text("pipelined")); },
               {"g.yaml:6", "layer 'bn'", "transition: allgather"});
  EXPECT_NO_THROW(build_text(text("allgather")));
}

TEST(Graph, ChainBackwardPingPongsTwoSlots) {
  Network net = build({"{name: fc0, type: linear, outputs: 8, parallel: data}",
                       "{name: relu0, type: relu}", "{name: fc1, type: linear, outputs: 6, parallel: data}",
                       "{name: fc2, type: linear, outputs: 5, parallel: data}",
                       "{name: loss, type: softmax_cross_entropy}"});
  BackwardSlots s = plan_backward(net, in_place_layers(net), 0, net.size() - 1, false);
  ASSERT_EQ(s.slot_width.size(), 2u);
  EXPECT_EQ(s.steps[3].dy, BackwardSlots::kStageGradient);
  EXPECT_EQ(s.steps[3].dx[0], 0);
  EXPECT_EQ(s.steps[2].dx[0], 1);
  EXPECT_EQ(s.steps[1].dx[0], 1);  // relu0 runs in place: its dx is its dy
  EXPECT_EQ(s.steps[0].dx[0], BackwardSlots::kNone);  // the batch needs no gradient
  for (const auto& st : s.steps) EXPECT_FALSE(st.add_into[0]);
}

TEST(Graph, ResidualGradientIsSummed) {
  Network net = build(kResidual);
  BackwardSlots s = plan_backward(net, in_place_layers(net), 0, net.size() - 1, false);
  // The sum's dx for relu1 comes first (reverse order) and owns relu1's slot; conv2's dx for
  // relu1 is a spare added into it.
  const BackwardSlots::Step& sum = s.steps[4];
  const BackwardSlots::Step& conv2 = s.steps[2];
  EXPECT_FALSE(sum.add_into[1]);
  EXPECT_TRUE(conv2.add_into[0]);
  EXPECT_EQ(conv2.target[0], sum.dx[1]);
  EXPECT_NE(conv2.dx[0], sum.dx[1]);
  EXPECT_LE(s.slot_width.size(), 4u);
}

// Loss of the network at its current weights (eval mode: no dropout; this net has none).
double loss_of(HybridStep& step, const Tensor& x, const Tensor& y, const std::vector<int32_t>& labels,
               const BatchRows& rows) {
  return step.evaluate(x, y, labels.data(), rows).loss_sum / rows.total();
}

TEST(Graph, ResidualNetworkGradientMatchesCentralDifferences) {
  auto backend = make_cpu_backend();
  auto comm = make_local_communicator();
  Network net = build(kResidual);
  ParamStore store(net.params(), net.buffers(), *backend);
  for (Param* p : store.params()) initialize_param(*p, 3, *backend);
  HybridStep step(net, store, *backend, *comm, ParallelSpec{});
  const int64_t B = 4;
  const BatchRows rows = split_rows(B, 0, 1);
  Tensor x = backend->empty(Shape{B, 1, 6, 6});
  Tensor y = backend->empty(Shape{B}, DType::I32);
  std::vector<float> xs(x.numel());
  const RngKey key = rng_key(11, Purpose::Test);
  for (size_t i = 0; i < xs.size(); ++i)
    xs[i] = 2.f * philox_uniform(key, static_cast<uint32_t>(i), 0, 0, 0) - 1.f;
  const std::vector<int32_t> labels = {0, 3, 1, 4};
  backend->from_host(xs.data(), x.f32(), xs.size() * sizeof(float));
  backend->from_host(labels.data(), y.i32(), B * sizeof(int32_t));
  step.train(x, y, labels.data(), rows, 0, 1, [] {});

  int checked = 0;
  for (Param* p : store.params()) {
    float* w = p->value.f32();  // the CPU backend's memory is the host's
    const float* g = p->grad.f32();
    for (int64_t i = 0; i < p->value.numel(); i += 5) {
      const float saved = w[i];
      const float h = 1e-2f;
      w[i] = saved + h;
      const double up = loss_of(step, x, y, labels, rows);
      w[i] = saved - h;
      const double down = loss_of(step, x, y, labels, rows);
      w[i] = saved;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(g[i], numeric, 2e-3 + 2e-2 * std::abs(numeric)) << p->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace owt::test
