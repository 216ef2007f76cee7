// Network: the model file's layers built through the registry and placed by the hybrid plan
// (parallel/plan.h: data-parallel prefix, model-parallel suffix, loss last), with shapes fixed,
// params declared and every tensor's placement known (docs/ARCHITECTURE.md, "Placement").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "owt/nn/layer.h"
#include "owt/parallel/network_spec.h"
#include "owt/parallel/plan.h"

namespace owt {

class Network {
 public:
  Network(const NetworkSpec& spec, int rank, int workers, ParallelMode mode);

  size_t size() const { return layers_.size(); }  // including the loss
  Layer& layer(size_t i) { return *layers_[i]; }
  const Layer& layer(size_t i) const { return *layers_[i]; }
  LossLayer& loss() { return *layers_.back()->as_loss(); }
  // How the plan placed layer i: its input's placement, whether it shards its params.
  const LayerPlacement& placement(size_t i) const { return layers_[i]->placement(); }
  // One example's shapes, local. A layer with several inputs: its first input's shape.
  const Shape& input_shape(size_t i) const { return in_shapes_[i]; }
  const Shape& output_shape(size_t i) const { return out_shapes_[i]; }  // one example, local
  // The layers whose outputs layer i reads, in the model file's order (`inputs:`; by default
  // the previous layer). kNetworkInput stands for the batch itself (the first layer's input).
  static constexpr size_t kNetworkInput = static_cast<size_t>(-1);
  const std::vector<size_t>& inputs_of(size_t i) const { return inputs_[i]; }
  // How many later layers read layer i's output.
  size_t consumers_of(size_t i) const { return consumers_[i]; }
  // Index of the first model-parallel layer: layers before it see this worker's rows, layers
  // from it on see the whole global batch. size() - 1 (the loss) when nothing is sharded.
  size_t transition() const { return transition_; }
  bool has_model_parallel_stage() const { return transition_ < size() - 1; }
  int workers() const { return workers_; }
  int rank() const { return rank_; }
  // Every param of every layer, in layer order; and every buffer (Layer::buffers), likewise.
  std::vector<Param*> params();
  std::vector<Param*> buffers();

 private:
  // Per-layer model-file keys that are not the layer type's own.
  struct LayerKeys {
    std::string where;  // "file:line" of the `parallel` key (or the layer), for errors
    std::string inputs_where;  // "file:line" of the `inputs` key (or the layer)
    std::vector<std::string> inputs;  // the `inputs` names as written (empty: the previous layer)
    LayerParallel parallel = LayerParallel::Default;
    LinearSplit split = LinearSplit::Auto;
    double lr_mult = 1, wd_mult = 1, bias_wd_mult = 1;
    bool freeze = false;
  };
  std::vector<LayerKeys> build_layers(const NetworkSpec& spec, ParallelMode mode);
  // Resolves each layer's `inputs:` to earlier layers' indices; checks the graph.
  void connect_layers(const std::vector<LayerKeys>& keys);
  // The model-parallel stage (from the transition to the loss) is a chain fed by the layer
  // just before the transition.
  void check_model_parallel_chain(const NetworkSpec& spec, const std::vector<LayerKeys>& keys) const;
  // Each layer's input shapes (its producers' outputs, or `input` for the network input).
  std::vector<Shape> input_shapes(size_t i, const Shape& input, const std::vector<Shape>& outputs) const;
  // What the plan needs of each layer, from a one-worker shape pass.
  std::vector<PlanLayer> describe_for_plan(const NetworkSpec& spec, const std::vector<LayerKeys>& keys);
  void place_layers(const NetworkSpec& spec, const Plan& plan, const std::vector<LayerKeys>& keys);

  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::vector<size_t>> inputs_;
  std::vector<size_t> consumers_;
  std::vector<Shape> in_shapes_, out_shapes_;
  size_t transition_ = 0;
  int rank_, workers_;
};

}  // namespace owt
