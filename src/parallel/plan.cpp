// make_plan: linear layers model-parallel unless the file says data; the transition before the
// first of them; and, per chain of model-parallel linears, the cheapest column/row split.
#include "owt/parallel/plan.h"

#include "owt/core/error.h"

namespace owt {

Plan make_plan(const std::vector<PlanLayer>& layers, ParallelMode mode) {
  const size_t n = layers.size();
  Plan plan;
  plan.transition = n - 1;
  plan.model_parallel.assign(n, false);
  plan.gather_output.assign(n, true);
  for (size_t i = 0; i + 1 < n; ++i) {
    const PlanLayer& l = layers[i];
    bool model = mode == ParallelMode::Owt && l.supports_model_parallel &&
                 l.parallel != LayerParallel::Data;
    if (model && plan.transition == n - 1) plan.transition = i;
    if (!model && i > plan.transition && l.has_params && l.parallel == LayerParallel::Data)
      throw Error(cat(l.where, ": layer '", l.name, "': parallel: data after the model-parallel layer '",
                      layers[plan.transition].name, "' (data-parallel layers come first)"));
    plan.model_parallel[i] = model;
  }
  // The next layer after i that is not shard-preserving (relu, dropout, flatten).
  auto consumer = [&](size_t i) {
    size_t j = i + 1;
    while (j < n && !layers[j].is_loss && layers[j].preserves_feature_shard) ++j;
    return j;
  };
  // Chains of model-parallel linears joined only by shard-preserving layers. Within a chain
  // each linear is column-parallel ("split, then stack") or row-parallel ("split, then add",
  // possible only right after a column-parallel one that keeps its output a feature shard).
  // Per example, in units of (K-1)/K elements (an all-gather of w costs w, an all-reduce 2w):
  //   column: all-reduce of its partial input gradients, 2·in (not for the transition layer,
  //           whose reduce-scatter is the same either way), plus gathering its outputs, out,
  //           unless a row-parallel linear or the (sharded) loss takes them as a shard;
  //   row:    all-reduce of its partial outputs, 2·out.
  // Every assignment of a chain is tried (chains are short) and the cheapest kept; ties go to
  // column. `split: output|input` in the model file fixes a layer's choice.
  std::vector<bool> in_chain(n, false);
  for (size_t start = 0; start + 1 < n; ++start) {
    if (!plan.model_parallel[start] || in_chain[start]) continue;
    std::vector<size_t> chain{start};
    for (size_t j = consumer(start); j + 1 < n && plan.model_parallel[j]; j = consumer(j)) chain.push_back(j);
    for (size_t c : chain) in_chain[c] = true;
    const size_t m = chain.size();
    const bool feeds_loss = layers[consumer(chain.back())].is_loss;
    double best_cost = -1;
    uint32_t best = 0;
    for (uint32_t rows = 0; rows < (1u << m); ++rows) {  // bit t: chain[t] row-parallel
      auto is_row = [&](size_t t) { return t < m && ((rows >> t) & 1u); };
      bool valid = !is_row(0);
      double cost = 0;
      for (size_t t = 0; t < m && valid; ++t) {
        const PlanLayer& l = layers[chain[t]];
        if ((l.split == LinearSplit::Input && !is_row(t)) || (l.split == LinearSplit::Output && is_row(t)))
          valid = false;
        if (is_row(t)) {
          valid = valid && !is_row(t - 1);
          cost += 2.0 * l.out_width;
        } else {
          const bool kept = is_row(t + 1) || (t + 1 == m && feeds_loss);
          cost += (chain[t] == plan.transition ? 0.0 : 2.0 * l.in_width) + (kept ? 0.0 : l.out_width);
        }
      }
      if (valid && (best_cost < 0 || cost < best_cost)) best_cost = cost, best = rows;
    }
    if (best_cost < 0)
      throw Error(cat(layers[chain.front()].where, ": layer '", layers[chain.front()].name,
                      "': no plan satisfies the split keys of this chain of linear layers "
                      "(split: input needs a column-parallel linear just before it)"));
    for (size_t t = 0; t < m; ++t) {
      const bool next_row = t + 1 < m && ((best >> (t + 1)) & 1u);
      const bool row = (best >> t) & 1u;
      plan.gather_output[chain[t]] = row || !(next_row || (t + 1 == m && feeds_loss));
    }
  }
  return plan;
}

}  // namespace owt
