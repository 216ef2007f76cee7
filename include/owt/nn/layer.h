// Layer: the forward/backward contract every layer type implements (Caffe's layer.hpp idea,
// with the backend and communicator passed in). Activations are (rows, features...) tensors.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/core/error.h"
#include "owt/nn/param.h"
#include "owt/nn/placement.h"

namespace owt {

// Everything a layer may use while running one pass.
struct RunContext {
  Backend& backend;
  Communicator& comm;       // the model-parallel group (all workers)
  bool training = true;
  uint64_t seed = 0;
  int64_t step = 0;         // optimizer step, keys dropout
  int64_t row0 = 0;         // global example index of row 0 of this pass
  int64_t loss_rows = 1;    // the loss is the mean over this many examples (the global batch)
  int64_t global_rows = 1;  // rows of the global batch in this pass, over all workers
};

class LossLayer;

// How the plan places one layer across the K workers (docs/ARCHITECTURE.md, "Placement").
struct LayerPlacement {
  int rank = 0, workers = 1;
  // The plan shards this layer's params over the workers (a model-parallel linear).
  bool model_parallel = false;
  // How its input arrives: this worker's rows in the data-parallel stage; every row
  // (Replicate) or a feature shard (Shard(1)) in the model-parallel stage.
  Placement input = Placement::rows();
  // Megatron's gather_output: a column-parallel linear all-gathers its output columns (true)
  // or leaves them a feature shard for a row-parallel linear or the sharded loss (false).
  bool gather_output = true;
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  const std::string& name() const { return name_; }
  virtual std::string type() const = 0;

  // Fixes shapes and declares params (metadata only; the network binds their memory) for the
  // placement `place`. `in` is one example's local input shape, e.g. (C, H, W) or (F).
  // Returns the local output shape.
  Shape setup(const Shape& in, const LayerPlacement& place) { return setup_inputs({in}, place); }
  // The same for a layer with several inputs (`inputs:` in the model file), in the file's order.
  Shape setup_inputs(const std::vector<Shape>& in, const LayerPlacement& place) {
    place_ = place;
    return configure_inputs(in);
  }
  const LayerPlacement& placement() const { return place_; }
  // Where the output lives, and where backward's dx lives (Partial: each worker holds a
  // partial sum that the step reduces). Both default to the input's placement, which is right
  // for every layer that maps rows to rows without touching other workers.
  virtual Placement output_placement() const { return place_.input; }
  virtual Placement input_grad_placement() const { return place_.input; }

  // Whether the layer keeps a feature shard a feature shard (elementwise layers: relu, dropout).
  virtual bool preserves_feature_shard() const { return false; }
  // Whether one row's output depends on the other rows of the pass (BatchNorm's batch
  // statistics), so the layer must see the whole global batch at once.
  virtual bool mixes_rows() const { return false; }
  // Whether the layer can run model-parallel (shard its params over workers).
  virtual bool supports_model_parallel() const { return false; }

  // y (rows, out...) = f(x (rows, in...)). y is allocated by the caller.
  virtual void forward(RunContext& ctx, const Tensor& x, Tensor& y) = 0;
  // dx = df/dx^T dy, placed as input_grad_placement(); param grads accumulate (+=). dx is null
  // for the first layer.
  virtual void backward(RunContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                        Tensor* dx) = 0;

  // Layers with several inputs (add) override these two and max_inputs(); every other layer has
  // one input, and they forward to forward()/backward() above. dx[i] is null where input i
  // needs no gradient (the network's input).
  virtual size_t max_inputs() const { return 1; }
  virtual void forward_inputs(RunContext& ctx, const std::vector<Tensor>& x, Tensor& y) {
    forward(ctx, x.at(0), y);
  }
  virtual void backward_inputs(RunContext& ctx, const std::vector<Tensor>& x, const Tensor& y,
                               const Tensor& dy, const std::vector<Tensor*>& dx) {
    backward(ctx, x.at(0), y, dy, dx.at(0));
  }

  virtual std::vector<Param*> params() { return {}; }
  // State saved with the params but not trained (BatchNorm's running statistics, PyTorch's
  // buffers): values only, no gradient or optimizer state, replicated on every worker.
  virtual std::vector<Param*> buffers() { return {}; }
  // Multiply-adds x 2 of one example's forward pass on this worker (0 for cheap layers);
  // backward costs about twice as much. Used by `owt bench` and `owt plan`.
  virtual double forward_flops() const { return 0; }
  // Elements this layer itself all-reduces over the workers in one training pass (forward and
  // backward), whatever the rows: synchronised BatchNorm's statistics. Counted by `owt plan`.
  virtual int64_t all_reduced_elements() const { return 0; }
  // Bytes this layer keeps beyond its params and its output for passes of up to `rows` rows
  // on this worker, at their largest: its Scratch buffers, the backend's workspace for it.
  // And the host buffers a pass allocates and frees again. Read by the memory model
  // (parallel/memory_model.h).
  virtual int64_t scratch_bytes(int64_t /*rows*/) const { return 0; }
  // Where scratch_bytes() is a buffer the backend keeps per key rather than per layer (the CPU
  // convolution's oneDNN plan, one per geometry), that key: layers with equal keys share one
  // buffer, and the memory model counts it once. "" (the default): the layer's own.
  virtual std::string scratch_key(int64_t /*rows*/) const { return ""; }
  virtual int64_t host_scratch_bytes(int64_t /*rows*/) const { return 0; }
  // Forward may write y over x (elementwise layers); saves activation memory.
  virtual bool can_run_in_place() const { return false; }
  // Backward reads this layer's output y (so the next layer must not overwrite it in place).
  virtual bool backward_needs_output() const { return false; }
  virtual LossLayer* as_loss() { return nullptr; }

 protected:
  // setup()'s work for one layer type; placement() is already set.
  virtual Shape configure(const Shape& in) = 0;
  // The same for several inputs; a one-input layer takes exactly one.
  virtual Shape configure_inputs(const std::vector<Shape>& in) {
    OWT_CHECK(in.size() == 1, "a ", type(), " layer takes one input");
    return configure(in[0]);
  }

 private:
  std::string name_;
  LayerPlacement place_;
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
  // The predicted class of each row (rows): the arg-max of its logits, ties going to the lower
  // class, as count_correct ranks them. logits may be a class shard; the classes are global and
  // identical on every worker that holds the row.
  virtual void predict(RunContext& ctx, const Tensor& logits, int32_t* classes) = 0;
  // Values per row the sharded loss all-reduces in a training pass: the target logit, and with
  // label smoothing the row's logit sum too. Counted by `owt plan`.
  virtual int64_t reduced_values_per_row() const = 0;
  void forward(RunContext&, const Tensor&, Tensor&) override;
  void backward(RunContext&, const Tensor&, const Tensor&, const Tensor&, Tensor*) override;
};

}  // namespace owt
