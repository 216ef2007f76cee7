// The cost model: per-layer elements sent per worker per step, mirroring exactly what
// HybridStep and the layers call on the Communicator, plus a simple compute + comm time model.
#include "owt/parallel/cost_model.h"

#include <algorithm>

#include "owt/nn/param.h"
#include "owt/parallel/network.h"

namespace owt {

double all_reduce_cost(double n, int k) { return k > 1 ? 2.0 * n * (k - 1) / k : 0.0; }
double all_gather_cost(double total, int k) { return k > 1 ? total * (k - 1) / k : 0.0; }
double reduce_scatter_cost(double total, int k) { return k > 1 ? total * (k - 1) / k : 0.0; }
double broadcast_cost(double n, int k) { return k > 1 ? n * (k - 1) / k : 0.0; }
double reduce_cost(double n, int k) { return k > 1 ? n * (k - 1) / k : 0.0; }

LinearCosts linear_costs(int64_t batch, int64_t inputs, int64_t outputs, bool bias, int k) {
  const double B = static_cast<double>(batch);
  LinearCosts c;
  c.data_parallel = all_reduce_cost(static_cast<double>(inputs) * outputs + (bias ? outputs : 0), k);
  c.split_output = all_gather_cost(B * outputs, k) + all_reduce_cost(B * inputs, k);
  c.split_input = all_reduce_cost(B * outputs, k) + all_gather_cost(B * inputs, k);
  return c;
}

namespace {

// Output features of a linear layer: rows of its (out, in) weight.
int64_t full_params_rows(Layer& layer) { return layer.params().front()->full_shape[0]; }

int64_t full_params(Layer& layer) {
  int64_t n = 0;
  for (Param* p : layer.params()) n += p->full_shape.numel();
  return n;
}

// Elements the layer's gradients take in the all-reduced buffer when every param is replicated:
// each padded to 256 bytes as ParamStore lays them out.
int64_t replicated_stored_params(Layer& layer) {
  int64_t n = 0;
  for (Param* p : layer.params()) n += padded_numel(p->full_shape.numel());
  return n;
}

}  // namespace

PlanReport plan_costs(const NetworkSpec& spec, int K, int64_t batch, double bandwidth, double flops) {
  PlanReport r;
  r.workers = K;
  r.batch = batch;
  r.transition = spec.parallel.transition;
  const int64_t b = batch, B = b * K;
  Network net(spec, 0, K, ParallelMode::Owt);
  Network one(spec, 0, 1, ParallelMode::Owt);
  const size_t t = net.transition();
  const bool mp = net.has_model_parallel_stage();
  const int64_t topk = std::min<int64_t>(5, spec.classes);

  double fwd_flops_worker = 0, fwd_flops_one = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    Layer& layer = net.layer(i);
    LayerCost c;
    c.name = layer.name();
    c.type = layer.type();
    c.params = full_params(layer);
    const bool in_mp = mp && i >= t;
    c.placement = layer.params().empty() ? "" : net.placement(i).model_parallel ? "model" : "data";
    // The layer's own all-reduces (sync BatchNorm) happen under either plan.
    const double own = all_reduce_cost(static_cast<double>(layer.all_reduced_elements()), K);
    c.data_parallel = all_reduce_cost(static_cast<double>(replicated_stored_params(layer)), K) + own;
    c.forward_flops = layer.forward_flops() * (in_mp ? B : b);
    fwd_flops_worker += c.forward_flops;
    fwd_flops_one += one.layer(i).forward_flops() * B;
    const double in = static_cast<double>(net.input_shape(i).numel());
    if (layer.supports_model_parallel()) {
      const Shape& w = layer.params().front()->full_shape;  // (out, in)
      LinearCosts lc = linear_costs(B, w[1], w[0], layer.params().size() > 1, K);
      c.model_parallel = std::min(lc.split_output, lc.split_input);
    }
    const LayerPlacement& place = net.placement(i);
    const bool feature_shard_in = place.input.is_feature_shard();
    if (!in_mp) {
      c.hybrid = c.data_parallel;  // includes `own`
    } else if (layer.as_loss()) {
      // Over a class shard: (max, sum-exp) pairs gathered, target logits (and with label
      // smoothing the logit sums) summed, top-k
      // candidates gathered. Over whole logits every worker computes the same loss alone.
      if (feature_shard_in)
        c.hybrid = all_gather_cost(2.0 * B * K, K) +
                   all_reduce_cost(static_cast<double>(B * net.loss().reduced_values_per_row()), K) +
                   all_gather_cost(2.0 * topk * B * K, K);
    } else if (place.model_parallel && feature_shard_in) {
      c.hybrid = all_reduce_cost(static_cast<double>(B) * full_params_rows(layer), K);  // row-parallel
    } else if (place.model_parallel) {  // column-parallel
      if (place.gather_output) c.hybrid += all_gather_cost(static_cast<double>(B) * full_params_rows(layer), K);
      if (i != t) c.hybrid += all_reduce_cost(B * in, K);  // partial input gradients
    }
    r.layers.push_back(c);
  }
  if (!mp) {
    // The loss is local; only its three summed numbers (loss, top-1, top-5) travel.
    r.layers.back().hybrid = all_reduce_cost(3, K);
  } else {
    LayerCost tr;
    tr.name = "transition";
    tr.type = transition_name(spec.parallel.transition);
    const double d = static_cast<double>(net.input_shape(t).numel());
    if (spec.parallel.transition == Transition::Pipelined)
      tr.hybrid = K * (broadcast_cost(b * d, K) + reduce_cost(b * d, K));
    else
      tr.hybrid = all_gather_cost(B * d, K) + reduce_scatter_cost(B * d, K);
    r.layers.insert(r.layers.begin() + static_cast<long>(t), tr);
  }
  for (const LayerCost& c : r.layers) {
    r.hybrid_total += c.hybrid;
    if (c.name != "transition") r.data_parallel_total += c.data_parallel;
  }
  r.data_parallel_total += all_reduce_cost(3, K);  // the dp loss's summed numbers
  r.train_flops_per_worker = 3 * fwd_flops_worker;
  r.train_flops_one_worker = 3 * fwd_flops_one;
  const double bytes = sizeof(float);
  r.step_seconds_one = r.train_flops_one_worker / flops;
  r.step_seconds = r.train_flops_per_worker / flops + r.hybrid_total * bytes / bandwidth;
  r.step_seconds_dp = r.train_flops_one_worker / K / flops + r.data_parallel_total * bytes / bandwidth;
  r.speedup = r.step_seconds_one / r.step_seconds;
  r.speedup_dp = r.step_seconds_one / r.step_seconds_dp;
  return r;
}

}  // namespace owt
