// make_plan: linear layers model-parallel unless the file says data; the transition before the
// first of them; and, per model-parallel linear, whether its output stays a feature shard.
#include "owt/parallel/plan.h"

#include "owt/core/error.h"

namespace owt {

Plan make_plan(const std::vector<PlanLayer>& layers, ParallelMode mode) {
  const size_t n = layers.size();
  Plan plan;
  plan.transition = n - 1;
  plan.model.assign(n, false);
  plan.keep_shard.assign(n, false);
  for (size_t i = 0; i + 1 < n; ++i) {
    const PlanLayer& l = layers[i];
    bool model = mode == ParallelMode::Owt && l.supports_model_parallel && l.parallel != "data";
    if (model && plan.transition == n - 1) plan.transition = i;
    if (!model && i > plan.transition && l.has_params && l.parallel == "data")
      throw Error(cat(l.where, ": layer '", l.name, "': parallel: data after the model-parallel layer '",
                      layers[plan.transition].name, "' (data-parallel layers come first)"));
    plan.model[i] = model;
  }
  // The next layer after i that is not shard-preserving (relu, dropout, flatten).
  auto consumer = [&](size_t i) {
    size_t j = i + 1;
    while (j < n && !layers[j].is_loss && layers[j].preserves_feature_shard) ++j;
    return j;
  };
  // A model-parallel linear i leaves its output as a feature shard when the loss takes it
  // (sharded softmax), or when the next linear j runs row-parallel ("split, then add"), which
  // the plan picks when it moves fewer elements per row than column-parallel (DESIGN §4):
  //   row: all-reduce j's outputs (2·out_j) vs column: gather i's outputs, all-reduce j's
  //   partial input gradients (in_j + 2·in_j), and gather j's own outputs (out_j) unless the
  //   loss takes them sharded. B and the (K-1)/K factors are common to both and cancel.
  for (size_t i = 0; i + 1 < n; ++i) {
    if (!plan.model[i]) continue;
    const size_t j = consumer(i);
    if (layers[j].is_loss) {
      plan.keep_shard[i] = true;
    } else if (plan.model[j]) {
      const bool j_gathers = !layers[consumer(j)].is_loss;
      const double row = 2.0 * layers[j].out_width;
      const double col = 3.0 * layers[j].in_width + (j_gathers ? layers[j].out_width : 0.0);
      plan.keep_shard[i] = layers[j].split == "input" || (layers[j].split == "auto" && row < col);
    }
  }
  return plan;
}

}  // namespace owt
