// `data.format: synthetic` in a model file: its keys parse (any channel count, defaults for noise
// and shift), every meaningless or bad key is an error at its line, and open_split builds the set
// from input, classes and seed without a data path (and refuses --data DIR).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "owt/train/data_split.h"
#include "owt/train/model_config.h"
#include "support/expect_error.h"

namespace owt {
namespace {

// One line per entry, so line numbers in expectations are index + 1.
const std::vector<std::string> kBase = {
    "name: synth",                                  // 1
    "input: [1, 6, 6]",                             // 2
    "classes: 7",                                   // 3
    "data:",                                        // 4
    "  format: synthetic",                          // 5
    "  train_examples: 50",                         // 6
    "  test_examples: 9",                           // 7
    "layers:",                                      // 8
    "  - {name: fc, type: linear, outputs: 7}",     // 9
    "  - {name: loss, type: softmax_cross_entropy}",// 10
    "solver: {lr: 0.1, batch: 8, epochs: 1}",       // 11
};

// The base file with line `line` (1-based) replaced; an empty replacement deletes it.
std::string with_line(int line, const std::string& text) {
  std::string t;
  for (int i = 0; i < static_cast<int>(kBase.size()); ++i) {
    if (i + 1 != line) t += kBase[i] + "\n";
    else if (!text.empty()) t += text + "\n";
  }
  return t;
}

ModelConfig parse(const std::string& text) { return parse_model_config(text, "test.yaml"); }

void expect_error(const std::string& text, const std::vector<std::string>& parts) {
  test::expect_error([&] { parse(text); }, parts);
}

TEST(SyntheticConfig, ParsesWithDefaultsAndAnyChannelCount) {
  ModelConfig m = parse(with_line(0, ""));
  EXPECT_EQ(m.data.format, "synthetic");
  EXPECT_EQ(m.data.path, "");
  EXPECT_EQ(m.data.train_examples, 50);
  EXPECT_EQ(m.data.test_examples, 9);
  EXPECT_DOUBLE_EQ(m.data.noise, 0.3);
  EXPECT_EQ(m.data.shift, 2);
  m = parse(with_line(7, "  test_examples: 9\n  noise: 0.05\n  shift: 0\n  mean: [0.5]\n  std: [0.25]"));
  EXPECT_DOUBLE_EQ(m.data.noise, 0.05);
  EXPECT_EQ(m.data.shift, 0);
  m = parse(with_line(2, "input: [5, 3, 4]"));  // not RGB: fine for synthetic
  EXPECT_EQ(m.net.input, (Shape{5, 3, 4}));
}

TEST(SyntheticConfig, MeaninglessOrBadKeysAreErrorsAtTheirLine) {
  expect_error(with_line(6, "  train_examples: 50\n  path: /data"),
               {"test.yaml:7", "field 'path'", "generated", "remove data.path"});
  expect_error(with_line(7, "  test_examples: 9\n  path: \"\""), {"test.yaml:8", "field 'path'"});
  expect_error(with_line(6, ""), {"test.yaml:5", "field 'train_examples'", "number of training examples"});
  expect_error(with_line(7, ""), {"test.yaml:5", "field 'test_examples'", "number of test examples"});
  expect_error(with_line(6, "  train_examples: -3"), {"test.yaml:6", "field 'train_examples'", "positive"});
  expect_error(with_line(7, "  test_examples: 0"), {"test.yaml:7", "field 'test_examples'", "positive"});
  expect_error(with_line(7, "  test_examples: 3000000000"), {"test.yaml:7", "field 'test_examples'"});
  expect_error(with_line(6, "  train_examples: 2.5"), {"test.yaml:6", "field 'train_examples'", "integer"});
  expect_error(with_line(7, "  test_examples: 9\n  noise: -0.1"), {"test.yaml:8", "field 'noise'"});
  expect_error(with_line(7, "  test_examples: 9\n  shift: -1"), {"test.yaml:8", "field 'shift'"});
  expect_error(with_line(7, "  test_examples: 9\n  shift: 40000"), {"test.yaml:8", "field 'shift'"});
  expect_error(with_line(7, "  test_examples: 9\n  strict: true"), {"test.yaml:8", "field 'strict'", "never unreadable"});
  expect_error(with_line(7, "  test_examples: 9\n  labels: [0, 1, 2, 3, 4, 5, 6]"),
               {"test.yaml:8", "field 'labels'", "only renumbers"});
  expect_error(with_line(7, "  test_examples: 9\n  pixels: 3"), {"test.yaml:8", "unknown key 'pixels'"});
  expect_error(with_line(7, "  test_examples: 9\n  class_frequency: power"),
               {"test.yaml:8", "field 'class_frequency'", "zipf"});
  EXPECT_EQ(parse(with_line(7, "  test_examples: 9\n  class_frequency: zipf")).data.class_frequency, "zipf");
}

TEST(SyntheticConfig, SyntheticKeysOnAFileFormatAreErrors) {
  for (const std::string key : {"train_examples", "test_examples", "noise", "shift", "class_frequency"}) {
    std::vector<std::string> lines = kBase;
    lines[4] = "  format: idx";
    lines[5] = "  path: /data";
    lines[6] = "  " + key + ": 1";  // line 7
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    expect_error(text, {"test.yaml:7", "field '" + key + "'", "only synthetic data", "does nothing"});
  }
}

TEST(SyntheticConfig, OpenSplitBuildsTheSetFromTheModel) {
  ModelConfig m = parse(with_line(2, "input: [2, 5, 4]"));
  auto train = open_split(m, "train"), test = open_split(m, "test");
  EXPECT_EQ(train->size(), 50);
  EXPECT_EQ(test->size(), 9);
  EXPECT_EQ(train->example_shape(), (Shape{2, 5, 4}));
  EXPECT_EQ(train->classes(), 7);
  std::vector<float> a(40), b(40);
  train->read(3, a.data());
  m.seed = 2;  // as --seed: the set follows the model's seed
  open_split(m, "train")->read(3, b.data());
  EXPECT_NE(a, b);
  m.data.path = "/some/dir";  // as --data DIR
  test::expect_error([&] { open_split(m, "train"); }, {"test.yaml", "synthetic", "/some/dir", "--data"});
}

// The head benchmarks: both files parse in full (as owt train reads them) and their synthetic
// sets open and read at once, whatever the classes (the models themselves are not built here).
TEST(SyntheticConfig, ShippedExtremeModelsParseAndOpenTheirData) {
  for (const auto& [file, classes] : {std::pair<std::string, int64_t>{"extreme_100k", 100000},
                                      std::pair<std::string, int64_t>{"extreme_1m", 1000000}}) {
    ModelConfig m = load_model_config(std::string(OWT_SOURCE_DIR) + "/models/" + file + ".yaml");
    EXPECT_EQ(m.data.format, "synthetic");
    EXPECT_EQ(m.net.classes, classes);
    EXPECT_EQ(m.solver.batch, 64);
    auto test = open_split(m, "test");
    EXPECT_EQ(test->example_shape(), m.net.input);
    std::vector<float> x(static_cast<size_t>(m.net.input.numel()));
    test->read(test->size() - 1, x.data());
    EXPECT_GT(open_split(m, "train")->size(), 100000) << file;
  }
}

}  // namespace
}  // namespace owt
