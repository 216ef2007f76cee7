// Network construction from a model file: the hybrid plan (conv data-parallel, linear
// model-parallel, the last linear's output left a class shard for the loss), K-way shards, the
// model file's errors with file:line, and keyed init of shards equal to the unsharded init.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/nn/init.h"
#include "owt/nn/param_store.h"
#include "support/expect_error.h"
#include "owt/parallel/network.h"
#include "owt/train/model_config.h"

namespace owt::test {
namespace {

// A model file whose layer i (0-based) is on line 6 + i.
std::string model_text(const std::vector<std::string>& layers, int classes = 10) {
  std::string t = "name: t\ninput: [1, 12, 12]\nclasses: " + std::to_string(classes) +
                  "\ndata: {path: /nonexistent}\nlayers:\n";
  for (const std::string& l : layers) t += "  - " + l + "\n";
  return t + "solver: {lr: 0.1, batch: 8, epochs: 1}\n";
}

const std::vector<std::string> kLayers = {
    "{name: conv1, type: conv, filters: 4, size: 3, pad: 1}",  // line 6   (4, 12, 12)
    "{name: relu1, type: relu}",                              // line 7
    "{name: pool1, type: maxpool, size: 2}",                  // line 8   (4, 6, 6)
    "{name: fc1, type: linear, outputs: 16}",                 // line 9
    "{name: relu2, type: relu}",                              // line 10
    "{name: drop1, type: dropout, rate: 0.5}",                // line 11
    "{name: fc2, type: linear, outputs: 10, split: output}",  // line 12: column-parallel
    "{name: loss, type: softmax_cross_entropy}",              // line 13
};

Network build(const std::vector<std::string>& layers, int rank = 0, int workers = 1,
              ParallelMode mode = ParallelMode::Owt, int classes = 10) {
  return Network(parse_model_config(model_text(layers, classes), "test.yaml").net, rank, workers, mode);
}

size_t index_of(Network& net, const std::string& name) {
  for (size_t i = 0; i < net.size(); ++i)
    if (net.layer(i).name() == name) return i;
  ADD_FAILURE() << "no layer " << name;
  return 0;
}

TEST(Network, DefaultPlanConvDataLinearModel) {
  Network net = build(kLayers);
  ASSERT_EQ(net.size(), kLayers.size());
  EXPECT_FALSE(net.placement(index_of(net, "conv1")).model_parallel);
  EXPECT_TRUE(net.placement(index_of(net, "fc1")).model_parallel);
  EXPECT_TRUE(net.placement(index_of(net, "fc2")).model_parallel);
  EXPECT_EQ(net.transition(), index_of(net, "fc1"));
  EXPECT_TRUE(net.has_model_parallel_stage());
  EXPECT_EQ(&net.loss(), net.layer(net.size() - 1).as_loss());
  EXPECT_EQ(net.input_shape(0), (Shape{1, 12, 12}));
  EXPECT_EQ(net.output_shape(index_of(net, "pool1")), (Shape{4, 6, 6}));
  EXPECT_EQ(net.input_shape(index_of(net, "fc1")), (Shape{4, 6, 6}));
  // fc1 feeds another linear: it gathers; fc2 feeds the loss: it stays a shard.
  EXPECT_TRUE(net.placement(index_of(net, "fc1")).gather_output);
  EXPECT_FALSE(net.placement(index_of(net, "fc2")).gather_output);
  int64_t col0 = -1, total = -1;
  EXPECT_FALSE(net.layer(index_of(net, "fc1")).output_placement().is_feature_shard());
  ASSERT_TRUE(net.layer(index_of(net, "fc2")).output_placement().is_feature_shard());
  col0 = net.layer(index_of(net, "fc2")).output_placement().begin;
  total = net.layer(index_of(net, "fc2")).output_placement().size;
  EXPECT_EQ(col0, 0);
  EXPECT_EQ(total, 10);
  const LayerPlacement& lp = net.placement(net.size() - 1);
  EXPECT_TRUE(lp.input.is_feature_shard());
  EXPECT_EQ(lp.input.size, 10);
  // Params in layer order.
  std::vector<std::string> names;
  for (Param* p : net.params()) names.push_back(p->name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias",
                                             "fc2.weight", "fc2.bias"}));
}

TEST(Network, AutoSplitPicksRowParallelWhenItMovesLess) {
  // fc1 (144 -> 16) then fc2 (16 -> 10): row-parallel fc2 all-reduces 10 outputs per row;
  // column-parallel would gather fc1's 16 outputs and all-reduce 16 partial input gradients.
  std::vector<std::string> layers = kLayers;
  layers[6] = "{name: fc2, type: linear, outputs: 10}";
  for (int rank = 0; rank < 2; ++rank) {
    Network net = build(layers, rank, 2);
    const size_t fc1 = index_of(net, "fc1"), fc2 = index_of(net, "fc2");
    EXPECT_FALSE(net.placement(fc1).gather_output);
    EXPECT_EQ(net.output_shape(fc1), (Shape{8}));
    EXPECT_TRUE(net.placement(fc2).input.is_feature_shard());
    EXPECT_EQ(net.placement(fc2).input.begin, 8 * rank);
    EXPECT_EQ(net.output_shape(fc2), (Shape{10}));  // whole: partial sums all-reduced
    EXPECT_FALSE(net.layer(fc2).input_grad_placement().is_partial());
    auto params = net.layer(fc2).params();
    EXPECT_TRUE(params[0]->sharded());
    EXPECT_EQ(params[0]->placement.dim, 1);
    EXPECT_EQ(params[0]->local_shape(), (Shape{10, 8}));
    EXPECT_FALSE(params[1]->sharded());
    EXPECT_FALSE(params[1]->summed_over_workers()) << "every worker sees the whole batch";
    EXPECT_FALSE(net.placement(net.size() - 1).input.is_feature_shard());
    for (Param* p : net.layer(0).params()) EXPECT_TRUE(p->summed_over_workers());
  }
  // A wide second layer stays column-parallel: 2 * 4096 outputs > 3 * 16 inputs.
  layers[6] = "{name: fc2, type: linear, outputs: 4096}";
  Network wide = build(layers, 0, 2, ParallelMode::Owt, 4096);
  EXPECT_TRUE(wide.placement(index_of(wide, "fc1")).gather_output);
  EXPECT_FALSE(wide.placement(index_of(wide, "fc2")).input.is_feature_shard());
  // The model file can force either split.
  layers[6] = "{name: fc2, type: linear, outputs: 10, split: input}";
  EXPECT_TRUE(build(layers, 0, 2).placement(6).input.is_feature_shard());
  layers[3] = "{name: fc1, type: conv, filters: 2, size: 3, split: input}";
  expect_error([&] { build(layers); }, {"test.yaml:9", "split"});
}

TEST(Network, TransitionIsTheFirstModelParallelLinear) {
  std::vector<std::string> layers = kLayers;
  layers[3] = "{name: fc1, type: linear, outputs: 16, parallel: data}";
  Network net = build(layers);
  EXPECT_FALSE(net.placement(3).model_parallel);
  EXPECT_EQ(net.transition(), 6u);
  EXPECT_TRUE(net.placement(6).model_parallel);
}

TEST(Network, DataOnlyModeHasNoModelParallelStage) {
  for (int workers : {1, 2, 3}) {
    Network net = build(kLayers, 0, workers, ParallelMode::DataOnly);
    EXPECT_FALSE(net.has_model_parallel_stage());
    EXPECT_EQ(net.transition(), net.size() - 1);
    for (size_t i = 0; i + 1 < net.size(); ++i) EXPECT_FALSE(net.placement(i).model_parallel);
    EXPECT_EQ(net.output_shape(6), (Shape{10}));
    for (Param* p : net.params()) {
      EXPECT_FALSE(p->sharded()) << p->name;
      EXPECT_EQ(p->local_shape(), p->full_shape) << p->name;
    }
    EXPECT_FALSE(net.layer(6).output_placement().is_feature_shard());
    EXPECT_FALSE(net.placement(net.size() - 1).input.is_feature_shard());
  }
}

TEST(Network, AllDataModelFileHasNoModelParallelStage) {
  std::vector<std::string> layers = kLayers;
  layers[3] = "{name: fc1, type: linear, outputs: 16, parallel: data}";
  layers[6] = "{name: fc2, type: linear, outputs: 10, parallel: data}";
  Network net = build(layers, 0, 2);
  EXPECT_FALSE(net.has_model_parallel_stage());
  EXPECT_EQ(net.output_shape(6), (Shape{10}));
}

TEST(Network, ShardsSplitTheClasses) {
  // 10 classes over 2 workers: [0, 5), [5, 10). Over 3 the split is owt's shard_begin/shard_end
  // (communicator.h): contiguous, covering [0, 10), sizes differing by at most one.
  std::map<int, std::vector<std::pair<int64_t, int64_t>>> want = {{2, {{0, 5}, {5, 10}}}};
  for (int r = 0; r < 3; ++r)
    want[3].emplace_back(static_cast<int64_t>(shard_begin(10, r, 3)),
                         static_cast<int64_t>(shard_end(10, r, 3)));
  ASSERT_EQ(want[3].front().first, 0);
  ASSERT_EQ(want[3].back().second, 10);
  for (int r = 0; r < 3; ++r) {
    const int64_t size = want[3][r].second - want[3][r].first;
    EXPECT_TRUE(size == 3 || size == 4) << size;
    if (r) {
      EXPECT_EQ(want[3][r].first, want[3][r - 1].second);
    }
  }
  for (const auto& kv : want) {
    const int workers = kv.first;
    for (int rank = 0; rank < workers; ++rank) {
      SCOPED_TRACE("rank " + std::to_string(rank) + " of " + std::to_string(workers));
      Network net = build(kLayers, rank, workers);
      EXPECT_EQ(net.rank(), rank);
      EXPECT_EQ(net.workers(), workers);
      const auto [begin, end] = kv.second[rank];
      int64_t col0 = -1, total = -1;
      ASSERT_TRUE(net.layer(6).output_placement().is_feature_shard());
      col0 = net.layer(6).output_placement().begin;
      total = net.layer(6).output_placement().size;
      EXPECT_EQ(col0, begin);
      EXPECT_EQ(total, 10);
      EXPECT_EQ(net.output_shape(6), (Shape{end - begin}));
      auto params = net.layer(6).params();
      EXPECT_TRUE(params[0]->sharded());
      EXPECT_EQ(params[0]->placement.begin, begin);
      EXPECT_EQ(params[0]->placement.end, end);
      EXPECT_EQ(params[0]->local_shape(), (Shape{end - begin, 16}));
      EXPECT_EQ(params[1]->local_shape(), (Shape{end - begin}));
      // The loss sees this worker's class shard.
      const LayerPlacement& lp = net.placement(net.size() - 1);
      EXPECT_TRUE(lp.input.is_feature_shard());
      EXPECT_EQ(lp.input.begin, begin);
      EXPECT_EQ(lp.input.size, 10);
      EXPECT_EQ(net.input_shape(net.size() - 1), (Shape{end - begin}));
      // fc1 is sharded too but gathers its 16 outputs for fc2.
      EXPECT_EQ(net.output_shape(3), (Shape{16}));
      EXPECT_EQ(net.layer(3).params()[0]->placement.begin, static_cast<int64_t>(shard_begin(16, rank, workers)));
      EXPECT_EQ(net.layer(3).input_grad_placement().is_partial(), true);
      // conv stays replicated.
      EXPECT_FALSE(net.layer(0).params()[0]->sharded());
    }
  }
}

TEST(Network, ShardPassesThroughElementwiseLayersToTheLoss) {
  // fc2 -> dropout -> loss: fc2 still leaves a shard, and the dropout keys global columns.
  std::vector<std::string> layers = kLayers;
  layers.insert(layers.end() - 1, "{name: drop2, type: dropout, rate: 0.2}");
  Network net = build(layers, 1, 2);
  EXPECT_FALSE(net.placement(6).gather_output);
  EXPECT_TRUE(net.placement(7).input.is_feature_shard());
  EXPECT_EQ(net.placement(7).input.begin, 5);
  EXPECT_EQ(net.output_shape(7), (Shape{5}));
  EXPECT_TRUE(net.placement(8).input.is_feature_shard());
  EXPECT_EQ(net.placement(8).input.begin, 5);
}

TEST(Network, ModelParallelConvIsAnError) {
  std::vector<std::string> layers = kLayers;
  layers[0] = "{name: conv1, type: conv, filters: 4, size: 3, pad: 1, parallel: model}";
  expect_error([&] { build(layers); }, {"test.yaml:6", "conv1", "model-parallel"});
  layers[0] = kLayers[0];
  layers[1] = "{name: relu1, type: relu, parallel: model}";
  expect_error([&] { build(layers); }, {"test.yaml:7", "relu1", "model-parallel"});
}

TEST(Network, LossMustBeLast) {
  std::vector<std::string> layers = kLayers;
  std::swap(layers[6], layers[7]);
  expect_error([&] { build(layers); }, {"test.yaml:12", "loss", "last"});
  layers = kLayers;
  layers.pop_back();
  expect_error([&] { build(layers); }, {"test.yaml:12", "fc2", "loss"});
}

TEST(Network, ClassesMismatchIsAnError) {
  for (ParallelMode mode : {ParallelMode::Owt, ParallelMode::DataOnly})
    for (int workers : {1, 2})
      expect_error([&] { build(kLayers, 0, workers, mode, 12); },
                   {"test.yaml", "10 outputs", "classes: 12"});
}

TEST(Network, DuplicateLayerNamesAreAnError) {
  std::vector<std::string> layers = kLayers;
  layers[4] = "{name: relu1, type: relu}";
  expect_error([&] { build(layers); }, {"test.yaml:10", "relu1", "earlier layer"});
}

TEST(Network, DataParallelLinearAfterAModelParallelOneIsAnError) {
  std::vector<std::string> layers = kLayers;
  layers[6] = "{name: fc2, type: linear, outputs: 10, parallel: data}";
  expect_error([&] { build(layers); }, {"test.yaml:12", "fc2", "parallel: data", "fc1"});
  // In dp mode the plan has no model-parallel stage, so the same file is fine.
  Network net = build(layers, 0, 2, ParallelMode::DataOnly);
  EXPECT_FALSE(net.has_model_parallel_stage());
}

TEST(Network, LayerKeyErrorsNameTheLine) {
  std::vector<std::string> layers = kLayers;
  layers[2] = "{name: pool1, type: maxpool, size: 2, strde: 2}";
  expect_error([&] { build(layers); }, {"test.yaml:8", "pool1", "unknown key 'strde'"});
  layers = kLayers;
  layers[3] = "{name: fc1, type: linear, outputs: 16, parallel: both}";
  expect_error([&] { build(layers); }, {"test.yaml:9", "field 'parallel'", "model"});
  layers[3] = "{name: fc1, type: linear, outputs: 16, lr_mult: -1}";
  expect_error([&] { build(layers); }, {"test.yaml:9", "field 'lr_mult'"});
  layers[3] = "{name: fc1, type: linear, outputs: 16}";
  layers[5] = "{name: drop1, type: dropout, rate: 1.5}";
  expect_error([&] { build(layers); }, {"test.yaml:11", "field 'rate'"});
}

TEST(Network, SetupErrorsNameTheModelFileLine) {
  // A layer that cannot take its input shape is bad user input too: the message must say where
  // in the model file the layer is (docs/ARCHITECTURE.md, "Randomness"), not only the layer's name.
  std::vector<std::string> layers = kLayers;
  layers[0] = "{name: conv1, type: conv, filters: 4, size: 15}";  // 15x15 on 12x12
  expect_error([&] { build(layers); }, {"test.yaml:6", "conv1", "does not fit"});
  layers = kLayers;
  layers[2] = "{name: pool1, type: maxpool, size: 16}";
  expect_error([&] { build(layers); }, {"test.yaml:8", "pool1", "does not fit"});
  layers = kLayers;
  layers[6] = "{name: fc2, type: linear, outputs: 10, split: output}";
  expect_error([&] { build(layers, 0, 11); }, {"test.yaml:12", "fc2", "11 workers"});
}

TEST(Network, GenericKeysReachTheParams) {
  std::vector<std::string> layers = kLayers;
  layers[0] = "{name: conv1, type: conv, filters: 4, size: 3, pad: 1, freeze: true}";
  layers[3] = "{name: fc1, type: linear, outputs: 16, lr_mult: 2, wd_mult: 0}";
  Network net = build(layers);
  for (Param* p : net.params()) {
    const bool conv = p->name.rfind("conv1", 0) == 0, fc1 = p->name.rfind("fc1", 0) == 0;
    EXPECT_EQ(p->frozen, conv) << p->name;
    EXPECT_EQ(p->lr_mult, fc1 ? 2.f : 1.f) << p->name;
    EXPECT_EQ(p->wd_mult, fc1 ? 0.f : 1.f) << p->name;
  }
}

// Binds and initialises every param of `net` with `seed`; returns name -> values.
std::map<std::string, std::vector<float>> init_values(Network& net, uint64_t seed, Backend& be) {
  ParamStore store(net.params(), be);
  std::map<std::string, std::vector<float>> out;
  for (Param* p : net.params()) {
    initialize_param(*p, seed, be);
    out[p->name].assign(p->value.f32(), p->value.f32() + p->value.numel());
  }
  return out;
}

TEST(Network, ShardedInitEqualsTheRowsOfTheUnshardedInit) {
  auto be = make_cpu_backend();
  std::vector<std::string> layers = kLayers;
  layers[3] = "{name: fc1, type: linear, outputs: 16, init: he}";  // Normal weights, zero bias
  Network single = build(layers, 0, 1, ParallelMode::DataOnly);
  auto full = init_values(single, 42, *be);
  for (int workers : {2, 3}) {
    for (int rank = 0; rank < workers; ++rank) {
      SCOPED_TRACE("rank " + std::to_string(rank) + " of " + std::to_string(workers));
      Network net = build(layers, rank, workers);
      auto mine = init_values(net, 42, *be);
      for (Param* p : net.params()) {
        const std::vector<float>& f = full.at(p->name);
        const std::vector<float>& m = mine.at(p->name);
        if (!p->sharded()) {
          EXPECT_EQ(0, std::memcmp(f.data(), m.data(), f.size() * sizeof(float))) << p->name;
          continue;
        }
        ASSERT_EQ(p->placement.dim, 0);
        const int64_t row = p->full_shape.numel() / p->full_shape[0];
        ASSERT_EQ(static_cast<int64_t>(m.size()), (p->placement.end - p->placement.begin) * row);
        EXPECT_EQ(0, std::memcmp(f.data() + p->placement.begin * row, m.data(), m.size() * sizeof(float)))
            << p->name << " rows [" << p->placement.begin << ", " << p->placement.end << ")";
      }
    }
  }
  // A different seed gives different values; the init is not trivially constant.
  auto other = init_values(single, 43, *be);
  EXPECT_NE(other.at("fc2.weight"), full.at("fc2.weight"));
  const auto& w = full.at("fc1.weight");
  EXPECT_NE(w[0], w[1]);
}

}  // namespace
}  // namespace owt::test
