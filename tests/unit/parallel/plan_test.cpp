// make_plan on layer descriptions alone: AlexNet's FC chain (fc6 column-parallel and gathered,
// fc7 row-parallel, fc8 column-parallel into the sharded loss), forced splits, and dp mode.
#include <gtest/gtest.h>

#include "owt/parallel/plan.h"
#include "support/expect_error.h"

namespace owt::test {
namespace {

PlanLayer conv(const std::string& name) {
  PlanLayer l;
  l.name = name;
  l.has_params = true;
  return l;
}
PlanLayer elementwise(const std::string& name) {
  PlanLayer l;
  l.name = name;
  l.preserves_feature_shard = true;
  return l;
}
PlanLayer linear(const std::string& name, int64_t in, int64_t out, LinearSplit split = LinearSplit::Auto) {
  PlanLayer l;
  l.name = name;
  l.supports_model_parallel = l.has_params = true;
  l.in_width = in;
  l.out_width = out;
  l.split = split;
  return l;
}
PlanLayer loss() {
  PlanLayer l;
  l.name = "loss";
  l.is_loss = true;
  return l;
}

std::vector<PlanLayer> alexnet_head() {
  return {conv("conv5"), elementwise("relu5"), linear("fc6", 9216, 4096), elementwise("relu6"),
          linear("fc7", 4096, 4096), elementwise("relu7"), linear("fc8", 4096, 1000), loss()};
}

TEST(Plan, AlexNetHeadPicksTheCheapestChain) {
  Plan p = make_plan(alexnet_head(), ParallelMode::Owt);
  EXPECT_EQ(p.transition, 2u);
  EXPECT_EQ(p.model_parallel, (std::vector<bool>{false, false, true, false, true, false, true, false}));
  // Per example, in (K-1)/K units: column/column/column 4096 + 3*4096 + 2*4096 = 24576;
  // column/row/column 0 + 2*4096 + 2*4096 = 16384; column/column/row 4096 + 2*4096 + 2*1000
  // = 14288, the cheapest: fc6 gathers, fc7 keeps a shard, fc8 is row-parallel.
  EXPECT_EQ(p.gather_output, (std::vector<bool>{true, true, true, true, false, true, true, true}));
}

TEST(Plan, TheModelFileCanForceEitherSplit) {
  std::vector<PlanLayer> layers = alexnet_head();
  layers[4].split = LinearSplit::Input;  // forces column/row/column
  Plan forced = make_plan(layers, ParallelMode::Owt);
  EXPECT_FALSE(forced.gather_output[2]);
  EXPECT_TRUE(forced.gather_output[4]);
  EXPECT_FALSE(forced.gather_output[6]);
  layers[6].split = LinearSplit::Input;  // two row-parallel linears in a row cannot be
  expect_error([&] { make_plan(layers, ParallelMode::Owt); }, {"fc6", "split"});
  layers = {linear("fc1", 100, 4096), linear("fc2", 4096, 4096, LinearSplit::Input), loss()};
  EXPECT_FALSE(make_plan(layers, ParallelMode::Owt).gather_output[0]);
  layers[1].split = LinearSplit::Auto;  // row 2*4096 < column 3*4096 (the loss takes fc2 sharded)
  EXPECT_FALSE(make_plan(layers, ParallelMode::Owt).gather_output[0]);
  layers = {linear("fc1", 100, 16), linear("fc2", 16, 4096), loss()};  // wide output: column
  EXPECT_TRUE(make_plan(layers, ParallelMode::Owt).gather_output[0]);
}

TEST(Plan, DataOnlyAndDataAfterModel) {
  Plan dp = make_plan(alexnet_head(), ParallelMode::DataOnly);
  EXPECT_EQ(dp.transition, 7u);
  for (bool m : dp.model_parallel) EXPECT_FALSE(m);
  std::vector<PlanLayer> layers = alexnet_head();
  layers[6].parallel = LayerParallel::Data;
  layers[6].where = "m.yaml:20";
  expect_error([&] { make_plan(layers, ParallelMode::Owt); }, {"m.yaml:20", "fc8", "fc6"});
}

}  // namespace
}  // namespace owt::test
