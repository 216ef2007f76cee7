// The hybrid plan (DESIGN §1, §4): which layers run model-parallel, where the transition from
// the data-parallel stage is, and which model-parallel linears leave their output a feature
// shard (for a row-parallel linear or the sharded loss) instead of gathering it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace owt {

// owt: the plan of the model file (conv data-parallel, linear model-parallel by default);
// dp: every layer data-parallel (the baseline).
enum class ParallelMode { Owt, DataOnly };

// What the plan needs to know of one layer: the model file's keys and the layer's abilities.
struct PlanLayer {
  std::string name;
  std::string where;     // "file:line" of the layer's `parallel` key (or mapping), for errors
  std::string parallel;  // model file: "", "data" or "model"
  std::string split;     // model file: "auto", "output" or "input"
  bool supports_model_parallel = false, preserves_feature_shard = false;
  bool is_loss = false, has_params = false;
  int64_t in_width = 0, out_width = 0;  // unsharded features per example
};

struct Plan {
  size_t transition = 0;         // first model-parallel layer; the loss's index when none
  std::vector<bool> model;       // layer i is model-parallel
  std::vector<bool> keep_shard;  // model-parallel layer i leaves its output a feature shard
};

Plan make_plan(const std::vector<PlanLayer>& layers, ParallelMode mode);

}  // namespace owt
