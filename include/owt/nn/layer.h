// Layer: the forward/backward contract every layer type implements (Caffe's layer.hpp idea,
// with the backend and communicator passed in). Activations are (rows, features...) tensors.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/nn/param.h"

namespace owt {

// Where a layer runs in the hybrid scheme: Data = replicated weights, local rows;
// Model = weights sharded across the workers, all rows of the global batch.
enum class Parallel { Data, Model };

// Everything a layer may use while running one pass.
struct RunContext {
  Backend& backend;
  Communicator& comm;       // the model-parallel group (all workers)
  bool training = true;
  uint64_t seed = 0;
  int64_t step = 0;         // optimizer step, keys dropout
  int64_t row0 = 0;         // global example index of row 0 of this pass
  int64_t loss_rows = 1;    // the loss is the mean over this many examples (the global batch)
};

class LossLayer;

// How the plan places a layer across the K workers.
struct LayerPlacement {
  Parallel parallel = Parallel::Data;
  int rank = 0, workers = 1;
  // Model-parallel layers that shard their output: all-gather it to every worker (true), or
  // leave it as a feature shard for the next layers (false: the logits fed to the loss).
  bool gather_output = true;
  // When the input is itself a feature shard: its global column offset and the full width.
  // A model-parallel linear with a sharded input runs row-parallel ("split, then add").
  bool input_sharded = false;
  int64_t in_col0 = 0, in_cols_total = 0;
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  const std::string& name() const { return name_; }
  virtual std::string type() const = 0;

  // Fixes shapes and declares params (metadata only; the network binds their memory).
  // `in` is one example's local input shape, e.g. (C, H, W) or (F). Returns the local output.
  virtual Shape setup(const Shape& in, const LayerPlacement& place) = 0;
  // Whether the layer keeps a feature shard a feature shard (elementwise layers: relu, dropout).
  virtual bool preserves_feature_shard() const { return false; }
  // Whether the layer can run model-parallel (shard its params over workers).
  virtual bool supports_model_parallel() const { return false; }
  // When the output is a feature shard (not gathered): its first global column and full width.
  virtual bool output_shard(int64_t* col0, int64_t* cols_total) const { return false; }

  // y (rows, out...) = f(x (rows, in...)). y is allocated by the caller.
  virtual void forward(RunContext& ctx, const Tensor& x, Tensor& y) = 0;
  // dx = df/dx^T dy; param grads accumulate (+=). dx is null for the first layer.
  // For a model-parallel layer whose input is not sharded, dx may be a partial sum
  // (see input_grad_is_partial) that the caller reduces across workers.
  virtual void backward(RunContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                        Tensor* dx) = 0;

  virtual std::vector<Param*> params() { return {}; }
  // Multiply-adds x 2 of one example's forward pass on this worker (0 for cheap layers);
  // backward costs about twice as much. Used by `owt bench` and `owt plan`.
  virtual double forward_flops() const { return 0; }
  // True when backward's dx is this worker's partial sum (column-parallel linear).
  virtual bool input_grad_is_partial() const { return false; }
  // Forward may write y over x (elementwise layers); saves activation memory.
  virtual bool can_run_in_place() const { return false; }
  // Backward reads this layer's output y (so the next layer must not overwrite it in place).
  virtual bool backward_needs_output() const { return false; }
  virtual LossLayer* as_loss() { return nullptr; }

 private:
  std::string name_;
};

// The loss closes the network: consumes logits (rows, classes or a class shard) and labels.
class LossLayer : public Layer {
 public:
  using Layer::Layer;
  LossLayer* as_loss() override { return this; }
  // Returns the summed loss over the rows (not yet divided), identical on every worker.
  virtual double forward_loss(RunContext& ctx, const Tensor& logits, const Tensor& labels) = 0;
  // dlogits = d(loss sum / ctx.loss_rows)/dlogits for the rows of the last forward_loss.
  virtual void backward_loss(RunContext& ctx, const Tensor& logits, const Tensor& labels,
                             Tensor& dlogits) = 0;
  // Counts rows whose label is the arg-max (top1) or among the 5 largest logits (top5).
  // labels (rows) on the host; logits may be a class shard, the counts are global.
  virtual void count_correct(RunContext& ctx, const Tensor& logits, const int32_t* labels,
                             int64_t* top1, int64_t* top5) = 0;
  void forward(RunContext&, const Tensor&, Tensor&) override;
  void backward(RunContext&, const Tensor&, const Tensor&, const Tensor&, Tensor*) override;
};

}  // namespace owt
