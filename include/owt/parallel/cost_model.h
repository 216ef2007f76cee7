// The communication cost model behind `owt plan` (docs/ARCHITECTURE.md): elements each worker sends per
// step under pure data parallelism, pure model parallelism and owt's hybrid plan, and the step
// time and speedup they predict. The Communicator's counters use the same conventions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "owt/parallel/network_spec.h"

namespace owt {

// Elements one worker sends for each collective over K workers, as a ring algorithm moves
// them: all-reduce of n: 2n(K-1)/K; all-gather or reduce-scatter of a total of n (all blocks
// together): n(K-1)/K; broadcast and reduce of n along a chain: n(K-1)/K (so the pipelined
// transition's K broadcasts move what one all-gather moves).
// Zero for K = 1. Dettmers' example (batch 128, a 1000x500 weight, 2 workers) comes out as
// 500000 (data parallel), 128000 (split by output, stacked), 160000 (split by input, added).
double all_reduce_cost(double n, int workers);
double all_gather_cost(double total, int workers);
double reduce_scatter_cost(double total, int workers);
double broadcast_cost(double n, int workers);
double reduce_cost(double n, int workers);

// One linear layer (in -> out) at global batch B over K workers, elements per worker per step.
// The textbook counts: plan_costs adds the up to 63 zero elements per param that ParamStore's
// 256-byte alignment puts after each replicated gradient (Param::stored_numel).
struct LinearCosts {
  double data_parallel;  // all-reduce of the weight gradient (and bias)
  double split_output;   // column-parallel: all-gather outputs, all-reduce input gradients
  double split_input;    // row-parallel: all-reduce partial outputs, all-gather input gradients
};
LinearCosts linear_costs(int64_t batch, int64_t inputs, int64_t outputs, bool bias, int workers);

struct LayerCost {
  std::string name, type, placement;  // placement: "data", "model" or ""
  int64_t params = 0;                 // full (unsharded) parameter count
  double data_parallel = 0;           // this layer under pure data parallelism
  double model_parallel = 0;          // best of split-output / split-input (linear only)
  double hybrid = 0;                  // what owt's plan moves for this layer
  double forward_flops = 0;           // per worker per step
};

struct PlanReport {
  int workers = 1;
  int64_t batch = 0;                  // per worker
  Transition transition = Transition::Allgather;
  std::vector<LayerCost> layers;      // including "transition" and the loss rows
  double data_parallel_total = 0, hybrid_total = 0;
  double train_flops_per_worker = 0;  // forward + backward (3x forward) per step
  double train_flops_one_worker = 0;  // the same global batch on one worker
  // Predictions for a link of `bandwidth` bytes/s and a device of `flops` FLOP/s.
  double step_seconds = 0, step_seconds_dp = 0, step_seconds_one = 0;
  double speedup = 0, speedup_dp = 0;
};

// The hybrid plan of `spec` at K workers, batch b per worker.
PlanReport plan_costs(const NetworkSpec& spec, int workers, int64_t batch, double bandwidth,
                      double flops);

}  // namespace owt
