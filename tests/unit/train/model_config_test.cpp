// parse_model_config: a valid file parses into ModelConfig; every bad file gives one owt::Error
// naming "test.yaml:<line>" and the field; the shipped models/fmnist.yaml loads and builds.
// Issue 16: every size is bounded before anything is allocated, every combination of keys that
// would do nothing is refused, `data.class_names`, and the network-only parse of `owt plan`.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include <filesystem>
#include <fstream>

#include "owt/core/error.h"
#include "owt/core/limits.h"
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
  expect_error(with_line(14, "  epochs: 2\n  dampening: 0.1"),
               {"test.yaml:15", "solver", "unknown key 'dampening'"});
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
      with_line(5, "  path: /x\n  augment: {crop: 12, pad: 2, flip: true}") +
          "parallel: {transition: pipelined, fc_update: block}\nseed: 77\n",
      "test.yaml");
  EXPECT_EQ(m.net.parallel.transition, Transition::Pipelined);
  EXPECT_EQ(m.net.parallel.fc_update, FcUpdate::Block);
  EXPECT_EQ(m.seed, 77u);
  EXPECT_EQ(m.data.train.crop, 12);
  EXPECT_EQ(m.data.train.pad, 2);
  EXPECT_TRUE(m.data.train.flip);
  EXPECT_TRUE(m.data.train.random_crop);
  EXPECT_EQ(m.data.eval.crop, 12);  // centre crop at evaluation
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

// ---- issue 16, item 7: combinations of keys that do nothing are refused with file:line ------

TEST(ModelConfig, FcUpdateBlockNeedsThePipelinedTransition) {
  expect_error(with_extra("parallel: {transition: allgather, fc_update: block}"),
               {"test.yaml:16", "field 'fc_update'", "transition: pipelined"});
  expect_error(with_extra("parallel: {fc_update: block}"),  // allgather is the default
               {"test.yaml:16", "field 'fc_update'", "pipelined"});
  EXPECT_NO_THROW(parse_model_config(with_extra("parallel: {transition: pipelined, fc_update: block}"),
                                     "test.yaml"));
}

TEST(ModelConfig, ParallelSectionNeedsAModelParallelLayer) {
  expect_error(with_line(9, "  - {name: fc, type: linear, outputs: 10, parallel: data}") +
                   "parallel: {transition: pipelined}\n",
               {"test.yaml:16", "field 'parallel'", "no layer is model-parallel"});
}

TEST(ModelConfig, LayerKeysMustDoSomething) {
  const std::string fc = "  - {name: fc, type: linear, outputs: 10}";
  expect_error(with_line(9, "  - {name: relu, type: relu, lr_mult: 2}\n" + fc),
               {"test.yaml:9", "layer 'relu'", "field 'lr_mult'", "no parameters"});
  expect_error(with_line(9, "  - {name: drop, type: dropout, freeze: true}\n" + fc),
               {"test.yaml:9", "layer 'drop'", "field 'freeze'", "no parameters"});
  expect_error(with_line(9, "  - {name: fc, type: linear, outputs: 10, freeze: true, wd_mult: 0}"),
               {"test.yaml:9", "layer 'fc'", "field 'wd_mult'", "frozen"});
  expect_error(with_line(9, "  - {name: fc, type: linear, outputs: 10, parallel: data, split: output}"),
               {"test.yaml:9", "layer 'fc'", "field 'split'", "data-parallel"});
  EXPECT_NO_THROW(parse_model_config(
      with_line(9, "  - {name: fc, type: linear, outputs: 10, freeze: false, lr_mult: 2, split: output}"),
      "test.yaml"));
}

TEST(ModelConfig, AugmentKeysMustDoSomething) {
  // test_views: 10 are crops.
  expect_error(with_line(5, "  path: /x\n  augment: {test_views: 10}"),
               {"test.yaml:6", "field 'test_views'", "augment.crop"});
  // The crop is what the network sees.
  expect_error(with_line(5, "  path: /x\n  augment: {crop: 10}"),
               {"test.yaml:6", "field 'crop'", "10x10", "(3, 12, 12)"});
  // A crop must fit the resized (and padded) image.
  expect_error(with_line(5, "  path: /x\n  augment: {resize: 10, crop: 12}"),
               {"test.yaml:6", "field 'crop'", "resized to a shorter side of 10"});
  EXPECT_NO_THROW(parse_model_config(with_line(5, "  path: /x\n  augment: {resize: 10, crop: 12, pad: 1}"),
                                     "test.yaml"));
  // Lighting is RGB only.
  std::string grey = with_line(2, "input: [1, 12, 12]");
  grey.replace(grey.find("[0.5, 0.4, 0.3]"), 15, "[0.5]");
  expect_error(grey.replace(grey.find("  path: /nonexistent"), 20,
                            "  path: /x\n  augment: {lighting: 0.1}"),
               {"test.yaml:6", "field 'lighting'", "RGB"});
}

TEST(ModelConfig, FormatSpecificKeysAndShapes) {
  // strict is about skipping unreadable images: only folder and packed sets skip any.
  expect_error(with_line(5, "  path: /x\n  strict: true"), {"test.yaml:6", "field 'strict'", "idx"});
  expect_error(with_line(5, "  path: /x\n  format: cifar10\n  strict: false"),
               {"test.yaml:7", "field 'strict'", "cifar10"});
  // Folder and packed images vary in size: a crop is needed.
  expect_error(with_line(5, "  path: /x\n  format: folder"), {"test.yaml:6", "field 'format'", "augment.crop"});
  expect_error(with_line(5, "  path: /x\n  format: packed\n  augment: {resize: 12}"),
               {"test.yaml:7", "field 'augment'", "crop"});
  EXPECT_NO_THROW(parse_model_config(
      with_line(5, "  path: /x\n  format: folder\n  strict: true\n  augment: {resize: 14, crop: 12}"),
      "test.yaml"));
  // CIFAR images are 32x32 RGB.
  expect_error(with_line(5, "  path: /x\n  format: cifar10"), {"test.yaml:2", "field 'input'", "32x32"});
  std::string big = with_line(5, "  path: /x\n  format: cifar100\n  augment: {crop: 40, pad: 2}");
  big.replace(big.find("input: [3, 12, 12]"), 18, "input: [3, 40, 40]");
  expect_error(big, {"test.yaml:7", "field 'crop'", "CIFAR's 32x32 images padded by 2"});
  EXPECT_NO_THROW(parse_model_config(with_line(5, "  path: /x\n  format: cifar10\n  augment: {resize: 12}"),
                                     "test.yaml"));
  std::string grey = with_line(2, "input: [1, 32, 32]");
  grey.replace(grey.find("[0.5, 0.4, 0.3]"), 15, "[0.5]");
  expect_error(grey.replace(grey.find("  path: /nonexistent"), 20, "  path: /x\n  format: folder"),
               {"test.yaml:2", "field 'input'", "RGB", "test.yaml:6"});
}

TEST(ModelConfig, LabelsKeepOneClassEach) {
  expect_error(with_line(5, "  path: /x\n  labels: [0, 1, 2]"),
               {"test.yaml:6", "field 'labels'", "keeps 3 labels", "classes: 10"});
  expect_error(with_line(5, "  path: /x\n  labels: [1, 1]"), {"test.yaml:6", "field 'labels'", "distinct"});
}

TEST(ModelConfig, ScheduleKeysOfAnotherType) {
  expect_error(with_line(15, "  schedule: {type: cosine, milestones: [1]}"),
               {"test.yaml:15", "field 'milestones'", "only a step schedule", "cosine"});
  expect_error(with_line(15, "  schedule: {type: constant, gamma: 0.5}"),
               {"test.yaml:15", "field 'gamma'", "only a step schedule"});
  expect_error(with_line(15, "  schedule: {type: step, milestones: [1], min_lr: 0.001}"),
               {"test.yaml:15", "field 'min_lr'", "only a cosine schedule"});
  expect_error(with_line(15, "  schedule: {type: step, milestones: [2, 1]}"),
               {"test.yaml:15", "field 'milestones'", "increasing"});
  expect_error(with_line(15, "  schedule: {type: cosine, min_lr: 0.1}"),
               {"test.yaml:15", "field 'min_lr'", "not below the learning rate"});
  expect_error(with_line(15, "  schedule: {type: cosine, min_lr: -0.1}"), {"test.yaml:15", "field 'min_lr'"});
}

TEST(ModelConfig, NameIsAPlainFileName) {
  // It becomes runs/<name>-<time>: no path may come out of it.
  expect_error(with_line(1, "name: ../../etc/x"), {"test.yaml:1", "field 'name'", "plain file name"});
  expect_error(with_line(1, "name: .hidden"), {"test.yaml:1", "field 'name'"});
  expect_error(with_line(1, "name: \"a\\nb\""), {"test.yaml:1", "field 'name'"});
  expect_error(with_line(5, "  path: /x\n  threads: -1"), {"test.yaml:6", "field 'threads'"});
  expect_error(with_extra("seed: -3"), {"test.yaml:16", "field 'seed'", "0 to 2^64 - 1"});
}

// ---- issue 16, item 2: sizes are bounded before anything is allocated ----------------------

TEST(ModelConfig, SizesAreBounded) {
  expect_error(with_line(2, "input: [3, 100000, 12]"), {"test.yaml:2", "field 'input'", "65536"});
  expect_error(with_line(2, "input: [3, 30000, 30000]"), {"test.yaml:2", "field 'input'", "268435456"});
  expect_error(with_line(3, "classes: 100000000"), {"test.yaml:3", "field 'classes'"});
  expect_error(with_line(13, "  batch: 10000000"), {"test.yaml:13", "field 'batch'"});
  expect_error(with_line(14, "  epochs: 100000000"), {"test.yaml:14", "field 'epochs'"});
  expect_error(with_line(5, "  path: /x\n  prefetch: 100000"), {"test.yaml:6", "field 'prefetch'"});
  // Any integer beyond 2^53, any number that is not finite or beyond 1e30.
  expect_error(with_line(13, "  batch: 99999999999999999999"), {"test.yaml:13", "field 'batch'"});
  expect_error(with_line(3, "classes: 2147483648"), {"test.yaml:3", "field 'classes'", "out of range"});
  // (Every factory of a layer type reads its sizes through the same bounded getter.)
  expect_error(with_line(9, "  - {name: c1, type: conv, filters: 4294967296, size: 1}"),
               {"test.yaml:9", "field 'filters'", "out of range"});
  EXPECT_EQ(parse_model_config(with_extra("seed: 18446744073709551615"), "test.yaml").seed,
            18446744073709551615u);
  expect_error(with_line(12, "  lr: nan"), {"test.yaml:12", "field 'lr'", "finite"});
  expect_error(with_line(12, "  lr: inf"), {"test.yaml:12", "field 'lr'", "finite"});
  expect_error(with_line(12, "  lr: 1e300"), {"test.yaml:12", "field 'lr'", "1e30"});
  expect_error(with_line(6, "  mean: [0.5, nan, 0.3]"), {"test.yaml:6", "field 'mean'", "finite"});
  expect_error(with_line(7, "  std: [1e-300]"), {"test.yaml:7", "field 'std'"});
}

TEST(ModelConfig, AnAbsurdNetworkIsRefusedBeforeAnythingIsAllocated) {
  // 3*12*12 inputs x 2^30 outputs: the weight would need 2^38.8 floats.
  expect_error(with_line(9, "  - {name: big, type: linear, outputs: 1073741824}\n"
                            "  - {name: fc, type: linear, outputs: 10}"),
               {"test.yaml", "field 'layers'", "parameters", "'big'"});
  // Products that overflow 64 bits are errors, never wrapped-around sizes: 2^28 inputs x
  // 2^30 filters, then a linear layer of 2^30 outputs (2^88 weights).
  std::string wide = with_line(9, "  - {name: c1, type: conv, filters: 1073741824, size: 1}\n"
                                  "  - {name: f1, type: linear, outputs: 1073741824}\n"
                                  "  - {name: fc, type: linear, outputs: 10}");
  wide.replace(wide.find("input: [3, 12, 12]"), 18, "input: [1, 16384, 16384]");
  wide.replace(wide.find("[0.5, 0.4, 0.3]"), 15, "[0.5]");
  expect_error(wide, {"test.yaml"});
  // Activations: a 1x1 conv with 2^25 filters on 12x12 gives 2^32 elements per example.
  expect_error(with_line(9, "  - {name: c1, type: conv, filters: 33554432, size: 1}\n"
                            "  - {name: fc, type: linear, outputs: 10}"),
               {"test.yaml", "field 'layers'"});
}

TEST(ModelConfig, ModelFileSizeIsBoundedBeforeReading) {
  const std::string path = std::filesystem::temp_directory_path() / "owt_model_config_huge.yaml";
  {
    std::ofstream out(path);
    out << join(kBase);
  }
  std::filesystem::resize_file(path, limits::kModelFileBytes + 1);  // sparse: nothing written
  try {
    load_model_config(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at most 1048576 bytes"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  expect_error(std::string(limits::kModelFileBytes + 1, '#'), {"test.yaml", "at most 1048576 bytes"});
  try {
    load_model_config("/dev/zero");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/zero: not a regular file"), std::string::npos) << e.what();
  }
}

// ---- issue 16, item 5: data.class_names ------------------------------------------------------

TEST(ModelConfig, ClassNames) {
  ModelConfig m = parse_model_config(
      with_line(5, "  path: /x\n  class_names: [zero, one, two, three, four, five, six, seven, eight, \"nine/9\"]"),
      "test.yaml");
  ASSERT_EQ(m.data.class_names.size(), 10u);
  EXPECT_EQ(m.data.class_names[9], "nine/9");
  expect_error(with_line(5, "  path: /x\n  class_names: [a, b]"),
               {"test.yaml:6", "field 'class_names'", "2 names for classes: 10"});
  expect_error(with_line(5, "  path: /x\n  class_names: [a, b, c, d, e, f, g, h, i, a]"),
               {"test.yaml:6", "field 'class_names'", "'a' names two classes"});
  expect_error(with_line(5, "  path: /x\n  class_names: [a, b, c, d, e, f, g, h, i, \"j\\nk\"]"),
               {"test.yaml:6", "field 'class_names'", "one line"});
  expect_error(with_line(5, "  path: /x\n  class_names: [a, b, c, d, e, f, g, h, i, \"\"]"),
               {"test.yaml:6", "field 'class_names'"});
  expect_error(with_line(5, "  path: /x\n  class_names: ten"), {"test.yaml:6", "field 'class_names'", "list"});
  ModelConfig f = load_model_config(OWT_SOURCE_DIR "/models/fmnist.yaml");
  EXPECT_EQ(f.data.class_names,
            (std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                      "Shirt", "Sneaker", "Bag", "Ankle boot"}));
  EXPECT_EQ(load_model_config(OWT_SOURCE_DIR "/models/fmnist_5class.yaml").data.class_names,
            (std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"}));
}

// ---- issue 16, item 8: a network-only file for `owt plan` ------------------------------------

TEST(ModelConfig, NetworkOnlyParseForPlan) {
  const std::string net = join({"name: net", "input: [3, 12, 12]", "classes: 10", "layers:",
                                "  - {name: fc, type: linear, outputs: 10}",
                                "  - {name: loss, type: softmax_cross_entropy}"});
  ModelConfig m = parse_model_config(net, "net.yaml", ModelParts::Network);
  EXPECT_FALSE(m.has_solver);
  EXPECT_EQ(m.solver.batch, 0);
  EXPECT_EQ(m.net.classes, 10);
  ASSERT_EQ(m.net.layers.size(), 2u);
  // Training needs data and solver.
  try {
    parse_model_config(net, "net.yaml");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing required field 'data'"), std::string::npos) << e.what();
  }
  // A section that is there is checked all the same.
  try {
    parse_model_config(net + "solver: {lr: 0.1, batch: 0, epochs: 1}\n", "net.yaml", ModelParts::Network);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("net.yaml:7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("field 'batch'"), std::string::npos) << e.what();
  }
  ModelConfig full = parse_model_config(join(kBase), "test.yaml", ModelParts::Network);
  EXPECT_TRUE(full.has_solver);
  EXPECT_EQ(full.solver.batch, 8);
}

}  // namespace
}  // namespace owt
