// ParamStore: one contiguous device buffer per layout group for values, gradients and optimizer
// state; each Param's tensors are views into them (llm.c's malloc_and_point_parameters), so
// zeroing, gradient all-reduce and checkpoints are one pass over a buffer.
#pragma once
#include <vector>

#include "owt/backend/backend.h"
#include "owt/nn/param.h"

namespace owt {

class ParamStore {
 public:
  // Binds every param's value/grad/state. Replicated params are laid out in *reverse* order
  // (the last layer's first), so backward fills the replicated gradient buffer front to back.
  ParamStore(std::vector<Param*> params, Backend& backend);

  const std::vector<Param*>& params() const { return params_; }
  // Replicated params in buffer order, and each one's element offset in the group buffers.
  const std::vector<Param*>& replicated() const { return replicated_; }
  size_t offset_of(const Param* p) const;
  // The replicated gradient buffer (all-reduced across workers) and its size in elements.
  float* replicated_grads() const { return grads_[0].f32(); }
  size_t replicated_size() const { return sizes_[0]; }
  void zero_grads(Backend& backend);
  void zero_sharded_grads(Backend& backend);

 private:
  std::vector<Param*> params_, replicated_, sharded_;
  Tensor values_[2], grads_[2], states_[2];  // [0] replicated, [1] sharded
  size_t sizes_[2] = {0, 0};
};

}  // namespace owt
