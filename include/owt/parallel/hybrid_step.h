// HybridStep: one forward/backward pass of the OWT scheme (docs/ARCHITECTURE.md, "The step"):
// the data-parallel stage on this worker's rows, the transition (allgather or pipelined), the
// model-parallel stage on the global batch, the sharded loss, and gradient sums in buckets.
#pragma once
#include <functional>
#include <map>
#include <tuple>
#include <vector>

#include "owt/nn/param_store.h"
#include "owt/nn/scratch.h"
#include "owt/parallel/grad_buckets.h"
#include "owt/parallel/network.h"
#include "owt/parallel/network_spec.h"
#include "owt/parallel/run_order.h"

namespace owt {

// How the rows of one global batch are split over the workers.
struct BatchRows {
  std::vector<int64_t> counts;  // rows of each worker
  int rank = 0;
  int64_t local() const { return counts[rank]; }
  int64_t total() const;
  int64_t row0_of(int r) const;  // global position of worker r's first row
  int64_t row0() const { return row0_of(rank); }
};

struct EvalCounts {
  double loss_sum = 0;
  int64_t top1 = 0, top5 = 0, rows = 0;
  EvalCounts& operator+=(const EvalCounts& o) {
    loss_sum += o.loss_sum;
    top1 += o.top1;
    top5 += o.top5;
    rows += o.rows;
    return *this;
  }
};

// Seconds spent in each layer's forward and backward while profiling is on, one entry per
// training step ([layer][step]; a pipelined step's blocks add up in one entry). The loss's slot
// (the last) holds its forward with the hit counts, and its backward.
struct LayerTimes {
  std::vector<std::vector<double>> forward, backward;
};

class HybridStep {
 public:
  HybridStep(Network& net, ParamStore& store, Backend& backend, Communicator& comm,
             ParallelSpec spec, size_t bucket_bytes = kGradBucketBytes);

  // Whether the model-parallel stage's params update after every pipelined block (fc_update:
  // block, with a model-parallel stage), instead of once after the step. Decided here once.
  bool updates_per_block() const { return block_updates_; }

  // Zeroes the gradients, then runs forward and backward over the global batch; leaves the
  // gradients of the mean loss over all rows summed over workers. x: this worker's rows
  // (b, C, H, W); labels: the whole global batch (B) on the device, labels_host the same on
  // the host (for the accuracy). When updates_per_block(), `update_model_stage` runs after each
  // block (it steps and zeroes the model-parallel stage's params).
  // Returns loss sum and top-1/top-5 hits over the global batch (identical on every worker).
  EvalCounts train(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                   const BatchRows& rows, int64_t step, uint64_t seed,
                   const std::function<void()>& update_model_stage);

  // Per-layer timing (each layer synchronised with the device): `owt bench --profile`.
  void enable_profiling(bool on);
  const LayerTimes& layer_times() const { return times_; }

  // Forward only on one worker (dropout off): the logits (rows, classes) of x (rows, ...).
  Tensor logits(const Tensor& x);

  // Forward only (dropout off); loss and top-1/top-5 hits over the global batch.
  EvalCounts evaluate(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                      const BatchRows& rows);
  // The two halves of evaluate(), for scoring an average over views: the logits as the loss
  // sees them (this worker's rows, or all B rows of this worker's class shard; a view into
  // the step's buffers, valid until the next pass), and their loss and hits.
  Tensor eval_logits(const Tensor& x, const BatchRows& rows);
  EvalCounts score(const Tensor& logits, const Tensor& labels, const int32_t* labels_host,
                   const BatchRows& rows);

 private:
  // Labels of some rows, on the device (for the loss) and on the host (for the hits).
  struct Labels {
    Tensor device;
    const int32_t* host;
    Labels rows(int64_t row0, int64_t n) const { return {device.rows(row0, n), host + row0}; }
  };
  // What the model-parallel stage leaves: its loss and hits, and the gradient w.r.t. its input
  // (placed as the transition layer's input gradient: Partial or Replicate).
  struct StageResult {
    EvalCounts counts;
    Tensor input_grad;
  };
  using Update = std::function<void()>;

  // The step's parts, in the paper's order.
  EvalCounts train_data_parallel(RunContext& ctx, const Tensor& x, const Labels& labels,
                                 const BatchRows& rows);
  Tensor data_parallel_forward(RunContext& ctx, const Tensor& x, int64_t rows);
  Tensor allgather_scheme(RunContext& ctx, const Tensor& a_local, const Labels& labels,
                          const BatchRows& rows, EvalCounts* counts, const Update& update);
  Tensor pipelined_scheme(RunContext& ctx, const Tensor& a_local, const Labels& labels,
                          const BatchRows& rows, EvalCounts* counts, const Update& update);
  Tensor transition(const Tensor& a_local, const BatchRows& rows);
  StageResult model_parallel_stage(RunContext& ctx, const Tensor& a, const Labels& labels,
                                   int64_t rows);
  Tensor transition_backward(const Tensor& da, const BatchRows& rows);
  void data_parallel_backward(RunContext& ctx, const Tensor& da_local, int64_t rows);

  // Layers [begin, end) forward on `rows` rows; returns the last output.
  Tensor run_forward(RunContext& ctx, size_t begin, size_t end, const Tensor& input, int64_t rows);
  // Backward through layers [begin, end) given dy of layer end-1's output; returns dx of
  // layer begin's input (undefined unless want_dx). Reports finished params to the buckets.
  Tensor run_backward(RunContext& ctx, size_t begin, size_t end, const Tensor& dy, int64_t rows,
                      bool want_dx);
  Tensor output_of(size_t i, int64_t rows);
  const BackwardSlots& backward_slots(size_t begin, size_t end, bool want_dx);
  // The loss's forward with its hits (into *counts) and its backward on `logits`: dlogits.
  Tensor loss_pass(RunContext& ctx, const Tensor& logits, const Labels& labels, EvalCounts* counts);
  // Where profiling adds layer i's forward or backward seconds this step (null when off).
  double* forward_clock(size_t i);
  double* backward_clock(size_t i);
  // Loss and hits of logits whose rows are this worker's own (data parallelism), summed.
  EvalCounts count_local(RunContext& ctx, const Tensor& logits, const Labels& labels);
  void sum_over_workers(EvalCounts* counts);
  RunContext context(bool training, uint64_t seed, int64_t step, const BatchRows& rows);

  Network& net_;
  ParamStore& store_;
  Backend& backend_;
  Communicator& comm_;
  ParallelSpec spec_;
  bool block_updates_;
  GradBuckets buckets_;
  std::vector<bool> in_place_;          // layer i writes its output over its input
  std::vector<std::vector<Tensor>> inputs_;  // layer i's inputs in the current pass
  std::vector<Scratch> outputs_;        // layer i's output (rows, out...)
  std::vector<Scratch> grad_;           // backward's gradient slots (run_order.h)
  std::map<std::tuple<size_t, size_t, bool>, BackwardSlots> slot_plans_;  // per stage
  Scratch gathered_, block_[2], da_local_, da_staging_, dlogits_;
  bool profiling_ = false;
  LayerTimes times_;
};

}  // namespace owt
