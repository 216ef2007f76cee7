// parse_model_config: a valid file parses into ModelConfig; every bad file gives one owt::Error
// naming "test.yaml:<line>" and the field; the shipped models/fmnist.yaml loads and builds.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "owt/core/error.h"
#include "owt/parallel/network.h"
#include "owt/train/model_config.h"

namespace owt {
namespace {

// One line per entry, so line numbers in expectations are index + 1.
const std::vector<std::string> kBase = {
    "name: tiny",                                   // 1
    "input: [3, 12, 12]",                           // 2
    "classes: 10",                                  // 3
    "data:",                                        // 4
    "  path: /nonexistent",                         // 5
    "  mean: [0.5, 0.4, 0.3]",                      // 6
    "  std: [0.25]",                                // 7
    "layers:",                                      // 8
    "  - {name: fc, type: linear, outputs: 10}",    // 9
    "  - {name: loss, type: softmax_cross_entropy}",// 10
    "solver:",                                      // 11
    "  lr: 0.1",                                    // 12
    "  batch: 8",                                   // 13
    "  epochs: 2",                                  // 14
    "  schedule: {type: cosine, warmup_epochs: 1}", // 15
};

std::string join(const std::vector<std::string>& lines) {
  std::string t;
  for (const auto& l : lines) t += l + "\n";
  return t;
}
// The base file with line `line` (1-based) replaced; an empty replacement deletes it.
std::string with_line(int line, const std::string& text) {
  std::vector<std::string> l = kBase;
  if (text.empty()) {
    l.erase(l.begin() + line - 1);
  } else {
    l[line - 1] = text;
  }
  return join(l);
}
std::string with_extra(const std::string& text) { return join(kBase) + text + "\n"; }

void expect_error(const std::string& text, const std::vector<std::string>& parts) {
  try {
    parse_model_config(text, "test.yaml");
    ADD_FAILURE() << "no error; expected one mentioning '" << parts.front() << "' for:\n" << text;
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
  }
}

TEST(ModelConfig, ParsesAValidFile) {
  ModelConfig m = parse_model_config(join(kBase), "test.yaml");
  EXPECT_EQ(m.file, "test.yaml");
  EXPECT_EQ(m.text, join(kBase));
  EXPECT_EQ(m.name, "tiny");
  EXPECT_EQ(m.net.input, (Shape{3, 12, 12}));
  EXPECT_EQ(m.net.classes, 10);
  EXPECT_EQ(m.seed, 1u);
  EXPECT_EQ(m.data.path, "/nonexistent");
  EXPECT_EQ(m.data.train.mean, (std::vector<float>{0.5f, 0.4f, 0.3f}));
  EXPECT_EQ(m.data.eval.std, (std::vector<float>{0.25f}));
  ASSERT_EQ(m.net.layers.size(), 2u);
  EXPECT_DOUBLE_EQ(m.solver.lr, 0.1);
  EXPECT_DOUBLE_EQ(m.solver.momentum, 0.9);
  EXPECT_EQ(m.solver.batch, 8);
  EXPECT_EQ(m.solver.epochs, 2);
  EXPECT_EQ(m.solver.schedule.type, "cosine");
  EXPECT_DOUBLE_EQ(m.solver.schedule.warmup_epochs, 1.0);
  EXPECT_EQ(m.net.parallel.transition, Transition::Allgather);
}

TEST(ModelConfig, UnknownTopLevelKey) {
  expect_error(with_extra("optimiser: adam"), {"test.yaml:16", "unknown key 'optimiser'"});
}

TEST(ModelConfig, UnknownSolverKey) {
  expect_error(with_line(14, "  epochs: 2\n  nesterov: true"),
               {"test.yaml:15", "solver", "unknown key 'nesterov'"});
  expect_error(with_line(15, "  schedule: {type: cosine, warmup: 1}"),
               {"test.yaml:15", "unknown key 'warmup'"});
}

TEST(ModelConfig, MissingSolverLr) {
  expect_error(with_line(12, ""), {"test.yaml:12", "solver", "missing required field 'lr'"});
}

TEST(ModelConfig, BadSolverValues) {
  expect_error(with_line(12, "  lr: abc"), {"test.yaml:12", "field 'lr'", "'abc'"});
  expect_error(with_line(12, "  lr: -0.1"), {"test.yaml:12", "field 'lr'", "positive"});
  expect_error(with_line(13, "  batch: 0"), {"test.yaml:13", "field 'batch'"});
  expect_error(with_line(13, "  batch: 8.5"), {"test.yaml:13", "field 'batch'", "integer"});
  expect_error(with_line(14, "  epochs: 2\n  momentum: 1.5"), {"test.yaml:15", "field 'momentum'"});
  expect_error(with_line(14, "  epochs: 2\n  weight_decay: -1"), {"test.yaml:15", "field 'weight_decay'"});
  expect_error(with_line(14, "  epochs: 2\n  type: adam"), {"test.yaml:15", "field 'type'", "sgd"});
}

TEST(ModelConfig, InputMustHaveThreeDimensions) {
  expect_error(with_line(2, "input: [12, 12]"), {"test.yaml:2", "field 'input'", "[C, H, W]", "2"});
  expect_error(with_line(2, "input: [3, 0, 12]"), {"test.yaml:2", "field 'input'", "positive"});
  expect_error(with_line(2, "input: [3, a, 12]"), {"test.yaml:2", "field 'input'"});
}

TEST(ModelConfig, InvalidYamlGivesLineAndColumn) {
  // Bad indentation: "batch" is indented less than its sibling "lr".
  std::string text = with_line(13, " batch: 8");
  try {
    parse_model_config(text, "test.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_TRUE(std::regex_search(msg, std::regex("^test\\.yaml:1[2-4]:[0-9]+: invalid YAML")))
        << msg;
  }
  // An unclosed flow mapping.
  try {
    parse_model_config(with_line(9, "  - {name: fc, type: linear, outputs: 10"), "test.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(std::regex_search(std::string(e.what()), std::regex("^test\\.yaml:[0-9]+:[0-9]+: ")))
        << e.what();
  }
}

TEST(ModelConfig, UnknownScheduleType) {
  expect_error(with_line(15, "  schedule: {type: exponential}"),
               {"test.yaml:15", "field 'type'", "'exponential'", "constant", "step", "cosine"});
  expect_error(with_line(15, "  schedule: {type: step}"), {"test.yaml:15", "field 'milestones'"});
  expect_error(with_line(15, "  schedule: {type: step, milestones: [1], gamma: 0}"),
               {"test.yaml:15", "field 'gamma'"});
  expect_error(with_line(15, "  schedule: {type: cosine, warmup_epochs: -1}"),
               {"test.yaml:15", "field 'warmup_epochs'"});
}

TEST(ModelConfig, DataMeanAndStdLengths) {
  expect_error(with_line(6, "  mean: [0.5, 0.4]"), {"test.yaml:6", "field 'mean'", "1 or 3", "got 2"});
  expect_error(with_line(7, "  std: [0.2, 0.2, 0.2, 0.2]"), {"test.yaml:7", "field 'std'", "1 or 3"});
  expect_error(with_line(7, "  std: [0.0]"), {"test.yaml:7", "field 'std'", "positive"});
  expect_error(with_line(5, "  path: /x\n  formt: idx"), {"test.yaml:6", "unknown key 'formt'"});
  expect_error(with_line(5, "  path: /x\n  augment: {crop: 10, flip: sometimes}"),
               {"test.yaml:6", "field 'flip'"});
}

TEST(ModelConfig, OtherTopLevelErrors) {
  expect_error(with_line(3, "classes: 1"), {"test.yaml:3", "field 'classes'"});
  expect_error(with_line(1, ""), {"test.yaml:", "'name'"});
  expect_error(with_extra("parallel: {transition: magic}"),
               {"test.yaml:16", "field 'transition'", "pipelined"});
  expect_error(join({"name: tiny", "input: [3, 12, 12]", "classes: 10", "data: {}", "layers: []",
                     "solver: {lr: 0.1, batch: 8, epochs: 2}"}),
               {"test.yaml:5", "field 'layers'"});
  expect_error(join({"name: tiny", "input: [3, 12, 12]", "classes: 10", "data: {}", "layers: 3",
                     "solver: {lr: 0.1, batch: 8, epochs: 2}"}),
               {"test.yaml:5", "field 'layers'", "list"});
}

TEST(ModelConfig, ParallelAndAugmentSections) {
  ModelConfig m = parse_model_config(
      with_line(5, "  path: /x\n  augment: {crop: 10, pad: 2, flip: true}") +
          "parallel: {transition: pipelined, fc_update: block}\nseed: 77\n",
      "test.yaml");
  EXPECT_EQ(m.net.parallel.transition, Transition::Pipelined);
  EXPECT_EQ(m.net.parallel.fc_update, FcUpdate::Block);
  EXPECT_EQ(m.seed, 77u);
  EXPECT_EQ(m.data.train.crop, 10);
  EXPECT_EQ(m.data.train.pad, 2);
  EXPECT_TRUE(m.data.train.flip);
  EXPECT_TRUE(m.data.train.random_crop);
  EXPECT_EQ(m.data.eval.crop, 10);  // centre crop at evaluation
  EXPECT_EQ(m.data.eval.pad, 0);
  EXPECT_FALSE(m.data.eval.flip);
  EXPECT_FALSE(m.data.eval.random_crop);
  EXPECT_EQ(m.data.eval.mean, (std::vector<float>{0.5f, 0.4f, 0.3f}));
}

TEST(ModelConfig, FmnistLoadsAndBuilds) {
  ModelConfig m = load_model_config(OWT_SOURCE_DIR "/models/fmnist.yaml");
  EXPECT_EQ(m.name, "fmnist");
  EXPECT_EQ(m.net.input, (Shape{1, 28, 28}));
  EXPECT_EQ(m.net.classes, 10);
  EXPECT_EQ(m.solver.schedule.type, "cosine");
  EXPECT_EQ(m.net.parallel.transition, Transition::Pipelined);
  for (int workers : {1, 2, 4}) {
    for (int rank = 0; rank < workers; ++rank) {
      Network net(m.net, rank, workers, ParallelMode::Owt);
      ASSERT_EQ(net.size(), 11u);
      EXPECT_EQ(net.layer(net.transition()).name(), "fc1");
      EXPECT_TRUE(net.has_model_parallel_stage());
      EXPECT_EQ(net.input_shape(net.transition()), (Shape{64, 7, 7}));
      // fc2 (1024 -> 10) runs row-parallel, so fc1 keeps its output a feature shard.
      const int64_t shard = static_cast<int64_t>(shard_end(1024, rank, workers) - shard_begin(1024, rank, workers));
      EXPECT_EQ(net.output_shape(net.transition()), (Shape{shard}));
      EXPECT_TRUE(net.placement(net.size() - 2).input.is_feature_shard());
    }
  }
  Network dp(m.net, 0, 2, ParallelMode::DataOnly);
  EXPECT_FALSE(dp.has_model_parallel_stage());
}

TEST(ModelConfig, MissingFileIsAnError) {
  try {
    load_model_config("/nonexistent/dir/model.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.yaml"), std::string::npos);
  }
}

}  // namespace
}  // namespace owt
