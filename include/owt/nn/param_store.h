// ParamStore: one contiguous device buffer per group for values, gradients and optimizer
// state; each Param's tensors are views into them (llm.c's malloc_and_point_parameters), so
// zeroing, gradient all-reduce and checkpoints are one pass over a buffer.
#pragma once
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
  ParamStore(std::vector<Param*> params, Backend& backend);

  const std::vector<Param*>& params() const { return params_; }
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
  std::vector<Param*> params_, summed_, model_stage_;
  Tensor values_[2], grads_[2], states_[2];  // [0] summed, [1] model-parallel stage
  size_t sizes_[2] = {0, 0};
};

}  // namespace owt
