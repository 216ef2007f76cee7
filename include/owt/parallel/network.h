// Network: the model file's layers built through the registry and placed by the hybrid plan
// (parallel/plan.h: data-parallel prefix, model-parallel suffix, loss last), with shapes fixed
// and params declared.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "owt/nn/layer.h"
#include "owt/parallel/plan.h"
#include "owt/train/model_config.h"

namespace owt {

class Network {
 public:
  Network(const ModelConfig& cfg, int rank, int workers, ParallelMode mode);

  size_t size() const { return layers_.size(); }  // including the loss
  Layer& layer(size_t i) { return *layers_[i]; }
  LossLayer& loss() { return *layers_.back()->as_loss(); }
  const LayerPlacement& placement(size_t i) const { return placements_[i]; }
  const Shape& input_shape(size_t i) const { return in_shapes_[i]; }    // one example, local
  const Shape& output_shape(size_t i) const { return out_shapes_[i]; }  // one example, local
  // Index of the first model-parallel layer: layers before it see this worker's rows, layers
  // from it on see the whole global batch. size() - 1 (the loss) when nothing is sharded.
  size_t transition() const { return transition_; }
  bool has_model_parallel_stage() const { return transition_ < size() - 1; }
  int workers() const { return workers_; }
  int rank() const { return rank_; }
  // Every param of every layer, in layer order.
  std::vector<Param*> params();

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<LayerPlacement> placements_;
  std::vector<Shape> in_shapes_, out_shapes_;
  size_t transition_ = 0;
  int rank_, workers_;
};

}  // namespace owt
