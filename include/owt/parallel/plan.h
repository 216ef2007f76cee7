// The hybrid plan (docs/ARCHITECTURE.md): which layers run model-parallel, where the transition
// from the data-parallel stage is, and which column-parallel linears gather their output and
// which leave it a feature shard (for a row-parallel linear or the sharded loss).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace owt {

// owt: the plan of the model file (conv data-parallel, linear model-parallel by default);
// dp: every layer data-parallel (the baseline, `--parallel dp`).
enum class ParallelMode { Owt, DataOnly };

// A layer's `parallel:` key: absent (linear layers model-parallel, the rest data-parallel),
// data, model, or auto (the step-time model picks data or model for K workers:
// auto_parallel.h resolves it before a Network is built on several workers).
enum class LayerParallel { Default, Data, Model, Auto };
// A model-parallel linear's `split:` key: the plan's cheapest choice, column-parallel (split the
// outputs) or row-parallel (split the inputs).
enum class LinearSplit { Auto, Output, Input };

// What the plan needs to know of one layer: the model file's keys and the layer's abilities.
struct PlanLayer {
  std::string name;
  std::string where;     // "file:line" of the layer's `parallel` key (or mapping), for errors
  LayerParallel parallel = LayerParallel::Default;
  LinearSplit split = LinearSplit::Auto;
  bool supports_model_parallel = false, preserves_feature_shard = false;
  bool is_loss = false, has_params = false;
  int64_t in_width = 0, out_width = 0;  // unsharded features per example
};

struct Plan {
  size_t transition = 0;            // first model-parallel layer; the loss's index when none
  std::vector<bool> model_parallel; // layer i shards its params over the workers
  // Megatron's gather_output: model-parallel layer i all-gathers its output (true) or leaves
  // it a feature shard (false). True for every other layer.
  std::vector<bool> gather_output;
};

Plan make_plan(const std::vector<PlanLayer>& layers, ParallelMode mode);

}  // namespace owt
