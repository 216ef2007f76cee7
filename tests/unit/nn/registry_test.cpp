// The layer registry: every registered type builds from a minimal YAML mapping and sets up on a
// suitable shape (a table here that must list every type), and bad layer mappings give one
// owt::Error naming the file, the line and the field.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "gradient_check.h"
#include "placement_helpers.h"
#include "support/expect_error.h"

namespace owt::test {
namespace {

struct MinimalLayer {
  std::string yaml;  // a minimal valid mapping
  Shape input;       // one example's input shape
  Shape output;      // expected output shape
  size_t params;     // number of params after setup
  size_t inputs = 1;  // how many inputs of that shape it takes (add: several)
};

// Every layer type of owt. A new registered type must be added here (the test below fails).
const std::map<std::string, MinimalLayer>& minimal_layers() {
  static const std::map<std::string, MinimalLayer> table = {
      {"conv", {"{name: l, type: conv, filters: 4, size: 3}", Shape{2, 5, 5}, Shape{4, 3, 3}, 2}},
      {"maxpool", {"{name: l, type: maxpool, size: 2}", Shape{2, 4, 4}, Shape{2, 2, 2}, 0}},
      {"avgpool", {"{name: l, type: avgpool, size: 2}", Shape{2, 4, 4}, Shape{2, 2, 2}, 0}},
      {"lrn", {"{name: l, type: lrn}", Shape{6, 3, 3}, Shape{6, 3, 3}, 0}},
      {"relu", {"{name: l, type: relu}", Shape{2, 3, 3}, Shape{2, 3, 3}, 0}},
      {"dropout", {"{name: l, type: dropout}", Shape{10}, Shape{10}, 0}},
      {"flatten", {"{name: l, type: flatten}", Shape{2, 3, 3}, Shape{18}, 0}},
      {"linear", {"{name: l, type: linear, outputs: 5}", Shape{8}, Shape{5}, 2}},
      {"softmax_cross_entropy", {"{name: l, type: softmax_cross_entropy}", Shape{10}, Shape{10}, 0}},
      {"batchnorm", {"{name: l, type: batchnorm}", Shape{3, 2, 2}, Shape{3, 2, 2}, 2}},
      {"global_avgpool", {"{name: l, type: global_avgpool}", Shape{3, 2, 2}, Shape{3}, 0}},
      {"add", {"{name: l, type: add}", Shape{3, 2, 2}, Shape{3, 2, 2}, 0, 2}},
  };
  return table;
}

TEST(Registry, EveryRegisteredTypeBuildsAndSetsUp) {
  ASSERT_FALSE(layer_registry().empty());
  for (const auto& kv : layer_registry()) {
    SCOPED_TRACE(kv.first);
    auto it = minimal_layers().find(kv.first);
    ASSERT_NE(it, minimal_layers().end())
        << "layer type '" << kv.first << "' is registered but registry_test.cpp has no minimal "
        << "mapping for it: add one (and an entry in gradient_checks() of "
        << "gradient_check_test.cpp, and a naive reference)";
    const MinimalLayer& m = it->second;
    auto layer = layer_from_yaml(m.yaml);
    ASSERT_NE(layer, nullptr);
    EXPECT_EQ(layer->type(), kv.first);
    EXPECT_EQ(layer->name(), "l");
    EXPECT_EQ(layer->as_loss() != nullptr, kv.first == "softmax_cross_entropy");
    EXPECT_EQ(layer->setup_inputs(std::vector<Shape>(m.inputs, m.input),
                                  layer_placement(TestPlacement::Data)),
              m.output);
    EXPECT_GE(layer->max_inputs(), m.inputs);
    ASSERT_EQ(layer->params().size(), m.params);
    for (Param* p : layer->params()) EXPECT_EQ(p->name.rfind("l.", 0), 0u) << p->name;
    EXPECT_EQ(layer->supports_model_parallel(), kv.first == "linear");
  }
  // And the table names no type the registry lacks.
  for (const auto& kv : minimal_layers())
    EXPECT_TRUE(layer_registry().count(kv.first)) << kv.first << " is not registered";
}

TEST(Registry, EveryTypeRejectsAnUnknownKey) {
  for (const auto& kv : minimal_layers()) {
    SCOPED_TRACE(kv.first);
    std::string yaml = kv.second.yaml;
    yaml.insert(yaml.size() - 1, ", zzz_unknown: 1");
    expect_error([&] { layer_from_yaml(yaml); }, {"test.yaml:1", "unknown key 'zzz_unknown'"});
  }
}

TEST(Registry, ParamsHavePyTorchLayoutNames) {
  auto conv = layer_from_yaml("{name: conv1, type: conv, filters: 4, size_h: 3, size_w: 5}");
  conv->setup(Shape{2, 8, 8}, layer_placement(TestPlacement::Data));
  ASSERT_EQ(conv->params().size(), 2u);
  EXPECT_EQ(conv->params()[0]->name, "conv1.weight");
  EXPECT_EQ(conv->params()[0]->full_shape, (Shape{4, 2, 3, 5}));
  EXPECT_EQ(conv->params()[1]->name, "conv1.bias");
  EXPECT_EQ(conv->params()[1]->full_shape, (Shape{4}));
  auto fc = layer_from_yaml("{name: fc, type: linear, outputs: 3}");
  fc->setup(Shape{2, 2, 2}, layer_placement(TestPlacement::Data));
  EXPECT_EQ(fc->params()[0]->full_shape, (Shape{3, 8}));
}

TEST(Registry, UnknownTypeListsKnownTypes) {
  std::vector<std::string> parts = {"test.yaml:2", "field 'type'", "unknown layer type 'convolution'"};
  for (const auto& kv : layer_registry()) parts.push_back(kv.first);
  expect_error([] { layer_from_yaml("name: c1\ntype: convolution\nfilters: 3\n"); }, parts);
}

TEST(Registry, UnknownKeyNamesFileLineAndKey) {
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: 4\nsize: 3\nfliters: 8\n"); },
               {"test.yaml:5", "unknown key 'fliters'", "filters"});
}

TEST(Registry, BadValuesNameFileLineAndField) {
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: -1\nsize: 3\n"); },
               {"test.yaml:3", "field 'filters'", "positive"});
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: abc\nsize: 3\n"); },
               {"test.yaml:3", "field 'filters'", "'abc'"});
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: 4\nsize: 3\nstride: 0\n"); },
               {"test.yaml:5", "field 'stride'"});
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: 4\n"); },
               {"test.yaml:", "size"});
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: 4\nsize: 3\ninit: xavier\n"); },
               {"test.yaml:5", "field 'init'", "default", "he"});
  expect_error([] { layer_from_yaml("name: c1\ntype: conv\nfilters: 4\nsize: 3\nbias: maybe\n"); },
               {"test.yaml:5", "field 'bias'"});
  expect_error([] { layer_from_yaml("name: d1\ntype: dropout\nrate: 1.5\n"); },
               {"test.yaml:3", "field 'rate'", "1.5"});
  expect_error([] { layer_from_yaml("name: d1\ntype: dropout\nrate: -0.1\n"); },
               {"test.yaml:3", "field 'rate'"});
  expect_error([] { layer_from_yaml("name: fc\ntype: linear\n"); },
               {"test.yaml:1", "missing required field 'outputs'"});
  expect_error([] { layer_from_yaml("name: fc\ntype: linear\noutputs: 0\n"); },
               {"test.yaml:3", "field 'outputs'"});
  expect_error([] { layer_from_yaml("name: p\ntype: maxpool\nsize: 0\n"); },
               {"test.yaml:3", "field 'size'"});
  expect_error([] { layer_from_yaml("name: p\ntype: avgpool\nsize: 2\npad: -1\n"); },
               {"test.yaml:4", "field 'pad'"});
  expect_error([] { layer_from_yaml("name: n\ntype: lrn\nsize: 4\n"); },
               {"test.yaml:3", "field 'size'", "odd"});
  expect_error([] { layer_from_yaml("name: n\ntype: lrn\nk: 0\n"); }, {"test.yaml:3", "field 'k'"});
  expect_error([] { layer_from_yaml("type: relu\n"); }, {"test.yaml:1", "'name'"});
  expect_error([] { layer_from_yaml("name: r\n"); }, {"test.yaml:1", "'type'"});
}

TEST(Registry, SetupRejectsShapesItCannotTake) {
  expect_error([] { layer_from_yaml("{name: c1, type: conv, filters: 2, size: 7}")->setup(Shape{1, 5, 5}, {}); },
               {"c1", "does not fit"});
  expect_error([] { layer_from_yaml("{name: c1, type: conv, filters: 2, size: 3}")->setup(Shape{10}, {}); },
               {"c1", "(C, H, W)"});
  expect_error([] { layer_from_yaml("{name: p1, type: maxpool, size: 3}")->setup(Shape{1, 2, 2}, {}); },
               {"p1", "does not fit"});
  expect_error([] { layer_from_yaml("{name: n1, type: lrn}")->setup(Shape{10}, {}); }, {"n1"});
  expect_error([] { layer_from_yaml("{name: s, type: softmax_cross_entropy}")->setup(Shape{2, 3, 3}, {}); },
               {"s", "linear"});
  expect_error([&] {
    layer_from_yaml("{name: fc, type: linear, outputs: 3}")
        ->setup(Shape{8}, layer_placement(TestPlacement::Model, 4));
  },
               {"fc", "3 outputs", "4 workers"});
}

}  // namespace
}  // namespace owt::test
