// ParamStore: one contiguous device buffer per group for values, gradients and optimizer
// state; each Param's tensors are views into them (llm.c's malloc_and_point_parameters), so
// zeroing, gradient all-reduce and checkpoints are one pass over a buffer. Buffers (BatchNorm's
// running statistics) have values only, in one more contiguous buffer.
#pragma once
#include <utility>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/nn/param.h"

namespace owt {

class ParamStore {
 public:
  // Binds every param's value/grad/state. Group 0 holds the params whose gradients are summed
  // over workers (Param::summed_over_workers), in *reverse* order (the last layer's first), so
  // backward fills that gradient buffer front to back; group 1 holds the model-parallel stage's
  // params (shards, and replicated params that see the whole global batch).
  // Buffers (Layer::buffers: replicated, untrained state) get values only, in a buffer of
  // their own, in the given order; their grad and state stay unbound.
  ParamStore(std::vector<Param*> params, std::vector<Param*> buffers, Backend& backend);
  // A store without buffers.
  ParamStore(std::vector<Param*> params, Backend& backend)
      : ParamStore(std::move(params), {}, backend) {}

  const std::vector<Param*>& params() const { return params_; }
  const std::vector<Param*>& buffers() const { return buffers_; }
  // Summed params in buffer order, and any param's element offset in its group's buffers.
  const std::vector<Param*>& summed() const { return summed_; }
  // The model-parallel stage's params (updated per block with fc_update: block).
  const std::vector<Param*>& model_stage() const { return model_stage_; }
  size_t offset_of(const Param* p) const;
  // The gradient buffer that is all-reduced across workers, and its size in elements.
  float* summed_grads() const { return grads_[0].f32(); }
  size_t summed_size() const { return sizes_[0]; }
  void zero_grads(Backend& backend);
  void zero_model_stage_grads(Backend& backend);

 private:
  std::vector<Param*> params_, summed_, model_stage_, buffers_;
  Tensor values_[2], grads_[2], states_[2];  // [0] summed, [1] model-parallel stage
  size_t sizes_[2] = {0, 0};
  Tensor buffer_values_;  // every buffer's value, in buffers_ order
};

}  // namespace owt
