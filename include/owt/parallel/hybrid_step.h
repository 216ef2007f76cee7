// HybridStep: one forward/backward pass of the OWT scheme (DESIGN §1): the data-parallel stage on
// this worker's rows, the transition (allgather or pipelined), the model-parallel stage on the
// global batch, the sharded loss, and gradient sync of the replicated params in buckets.
#pragma once
#include <functional>
#include <vector>

#include "owt/parallel/network.h"
#include "owt/nn/param_store.h"
#include "owt/nn/scratch.h"
#include "owt/parallel/grad_buckets.h"
#include "owt/train/model_config.h"

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
};

// Seconds spent in each layer's forward and backward, accumulated while profiling is on.
struct LayerTimes {
  std::vector<double> forward, backward;
};

class HybridStep {
 public:
  HybridStep(Network& net, ParamStore& store, Backend& backend, Communicator& comm,
             ParallelConfig config, size_t bucket_bytes = 25u << 20);

  // Zeroes the gradients, then runs forward and backward over the global batch; leaves the
  // gradients of the mean loss over all rows summed over workers. x: this worker's rows
  // (b, C, H, W); labels: the whole global batch (B) on the device. With fc_update: block,
  // `update_model_stage` runs after each pipelined block (it steps and zeroes the FC-stage params).
  // labels_host: the same labels on the host, for the training accuracy.
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
  Tensor run_forward(RunContext& ctx, size_t begin, size_t end, const Tensor& input, int64_t rows);
  // Backward through layers [begin, end) given dy of layer end-1's output; returns dx of
  // layer begin's input (undefined when begin == 0). Reports finished params to buckets.
  Tensor run_backward(RunContext& ctx, size_t begin, size_t end, const Tensor& dy, int64_t rows,
                      bool want_dx);
  Tensor output_of(size_t i, int64_t rows);
  // The transition of scheme (a): every worker's rows of the stage boundary, all B of them.
  Tensor gather_rows(const Tensor& a_local, const BatchRows& rows);
  // Layer i's input (the stage inputs, or layer i-1's output) and output, `rows` rows.
  Tensor input_of(size_t i, int64_t rows);
  // The model-parallel stage forward and backward on one block of global rows; adds the
  // block's loss and hits to `counts` and leaves the (partial) gradient w.r.t. the transition
  // input in last_block_grad_.
  void mp_block(RunContext& ctx, const Tensor& a, const Tensor& labels, const int32_t* labels_host,
                int64_t rows, EvalCounts* counts);
  // Data-parallel logits: loss and hits of this worker's rows (rows = the global batch).
  EvalCounts count_local(RunContext& ctx, const Tensor& logits, const Tensor& labels,
                         const int32_t* labels_host);
  void sum_over_workers(EvalCounts* counts);

  Network& net_;
  ParamStore& store_;
  Backend& backend_;
  Communicator& comm_;
  ParallelConfig config_;
  GradBuckets buckets_;
  std::vector<bool> in_place_;          // layer i writes its output over its input
  std::vector<Scratch> outputs_;        // layer i's output (rows, out...)
  Scratch grad_[2];                     // ping-pong gradient buffers
  Scratch gathered_, block_[2], da_local_, da_staging_, dlogits_;
  Tensor dp_input_, mp_input_;          // the tensors fed to each stage this pass
  Tensor last_block_grad_;              // mp_block's gradient w.r.t. the transition input
  bool profiling_ = false;
  LayerTimes times_;
};

}  // namespace owt
