// `parallel: auto` (parallel/auto_parallel.h): AlexNet's FC layers go model-parallel at K = 8 on
// K20-era figures; a narrow head at a large batch stays data-parallel; the file's keys are
// checked, and an auto layer that nobody resolved is refused by name.
#include <gtest/gtest.h>

#include "owt/parallel/auto_parallel.h"
#include "owt/parallel/network.h"
#include "owt/train/model_config.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

// AlexNet-OWT with every linear layer's `parallel` left to the plan.
NetworkSpec alexnet_auto() {
  ModelConfig cfg = load_model_config(OWT_SOURCE_DIR "/models/alexnet_owt.yaml", ModelParts::Network);
  std::vector<YAML::Node> layers;
  for (const YAML::Node& original : cfg.net.layers) {
    YAML::Node layer = YAML::Clone(original);
    if (layer["parallel"]) layer.remove("parallel");
    layers.push_back(layer);
  }
  cfg.net.layers = layers;
  cfg.net.parallel.default_layer = LayerParallel::Auto;
  return cfg.net;
}

TEST(AutoParallel, AlexNetFcLayersGoModelParallelAtEightK20s) {
  // Assumed K20-era figures: 1.5 TFLOP/s sustained per GPU (a K20's fp32 peak is 3.5), 6 GB/s
  // per GPU over PCIe 3.0 x16, gradient all-reduces not overlapped with the backward (as the
  // paper's analysis counts them); 128 images per worker.
  const NetworkSpec spec = alexnet_auto();
  const AutoChoice c = choose_parallel(spec, 8, 128, profile_from_flops(spec, 128, 1.5e12),
                                       calibration_from_bandwidth(6e9, 8, 0.0));
  ASSERT_TRUE(c.any_auto);
  ASSERT_EQ(c.candidates.size(), 4u);  // from fc6, from fc7, from fc8, none
  EXPECT_EQ(c.candidates[0].first_model, "fc6");
  EXPECT_LT(c.candidates[0].step_seconds, c.candidates[1].step_seconds);
  Network net(c.spec, 0, 8, ParallelMode::Owt);
  for (size_t i = 0; i < net.size(); ++i) {
    if (!net.layer(i).supports_model_parallel()) continue;
    EXPECT_TRUE(net.placement(i).model_parallel) << net.layer(i).name();
  }
  // With the all-reduces hidden under the convolutions' backward (NCCL on its own stream),
  // data parallelism's 234 MB of FC gradients cost nothing and it wins instead.
  const AutoChoice hidden = choose_parallel(spec, 8, 128, profile_from_flops(spec, 128, 1.5e12),
                                            calibration_from_bandwidth(6e9, 8, 1.0));
  EXPECT_EQ(hidden.candidates.front().first_model, "");
}

TEST(AutoParallel, NarrowHeadAtLargeBatchStaysDataParallel) {
  // A 64 -> 16 -> 10 head at 2048 rows per worker: its 1200 weights weigh far less than the
  // 2048 x 64 rows the transition would move.
  ModelConfig cfg = parse_model_config(R"(
name: narrow
input: [1, 8, 8]
classes: 10
layers:
  - {name: fc1, type: linear, outputs: 16}
  - {name: relu1, type: relu}
  - {name: fc2, type: linear, outputs: 10}
  - {name: loss, type: softmax_cross_entropy}
parallel: {default: auto, bandwidth_gbs: 1, tflops: 1}
)", "narrow.yaml", ModelParts::Network);
  const AutoChoice c = resolve_auto_parallel(cfg.net, 2, 2048);
  ASSERT_TRUE(c.any_auto);
  EXPECT_EQ(c.candidates.front().first_model, "") << "chosen: from " << c.candidates.front().first_model;
  EXPECT_NE(c.inputs.find("GB/s"), std::string::npos);
  Network net(c.spec, 0, 2, ParallelMode::Owt);
  EXPECT_FALSE(net.has_model_parallel_stage());
  // One worker: nothing to choose, the file stands (auto is fine on one worker).
  EXPECT_FALSE(resolve_auto_parallel(cfg.net, 1, 2048).any_auto);
  EXPECT_NO_THROW(Network(cfg.net, 0, 1, ParallelMode::Owt));
}

TEST(AutoParallel, UnresolvedAutoAndBadKeysAreRefusedByName) {
  const char* head = "name: m\ninput: [1, 8, 8]\nclasses: 10\nlayers:\n";
  ModelConfig cfg = parse_model_config(cat(head, "  - {name: fc1, type: linear, outputs: 10, parallel: auto}\n"
                                             "  - {name: loss, type: softmax_cross_entropy}\n"),
                                       "m.yaml", ModelParts::Network);
  expect_error([&] { Network(cfg.net, 0, 2, ParallelMode::Owt); }, {"m.yaml:5", "fc1", "auto", "not resolved"});
  expect_error([&] { resolve_auto_parallel(cfg.net, 2, 8); }, {"m.yaml", "bandwidth_gbs and tflops"});
  expect_error([&] {
    parse_model_config(cat(head, "  - {name: r, type: relu, parallel: auto}\n"
                                 "  - {name: loss, type: softmax_cross_entropy}\n"),
                       "r.yaml", ModelParts::Network);
  }, {"r.yaml:5", "parallel", "linear"});
  expect_error([&] {
    parse_model_config(cat(head, "  - {name: loss, type: softmax_cross_entropy}\nparallel: {default: auto}\n"),
                       "d.yaml", ModelParts::Network);
  }, {"d.yaml:6", "default", "profile and comm"});
  expect_error([&] {
    parse_model_config(cat(head, "  - {name: loss, type: softmax_cross_entropy}\n"
                                 "parallel: {default: auto, profile: p.json}\n"),
                       "p.yaml", ModelParts::Network);
  }, {"p.yaml:6", "comm", "go together"});
}

TEST(AutoParallel, MeasuredFilesAreReadRelativeToTheModelFile) {
  TempDir dir;
  ModelConfig cfg = parse_model_config(
      "name: m\ninput: [1, 8, 8]\nclasses: 10\nlayers:\n  - {name: fc1, type: linear, outputs: 10}\n"
      "  - {name: loss, type: softmax_cross_entropy}\nparallel: {default: auto, profile: p.json, comm: c.json}\n",
      dir.file("m.yaml"), ModelParts::Network);
  EXPECT_EQ(cfg.net.parallel.auto_inputs.profile, dir.file("p.json"));
  expect_error([&] { resolve_auto_parallel(cfg.net, 2, 8); }, {dir.file("p.json")});
}

}  // namespace
}  // namespace owt::test
