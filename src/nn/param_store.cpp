// ParamStore: lays params out in two contiguous groups (summed over workers; the model-parallel
// stage's) and binds each param's value, gradient and state as views into them; buffers get
// their values in a third buffer.
#include "owt/nn/param_store.h"

#include <algorithm>

namespace owt {

ParamStore::ParamStore(std::vector<Param*> params, std::vector<Param*> buffers, Backend& backend)
    : params_(std::move(params)), buffers_(std::move(buffers)) {
  for (auto it = params_.rbegin(); it != params_.rend(); ++it)
    if ((*it)->summed_over_workers()) summed_.push_back(*it);
  for (Param* p : params_)
    if (!p->summed_over_workers()) model_stage_.push_back(p);
  const std::vector<Param*>* groups[2] = {&summed_, &model_stage_};
  for (int g = 0; g < 2; ++g) {
    for (Param* p : *groups[g]) sizes_[g] += p->stored_numel();
    size_t n = std::max<size_t>(sizes_[g], 1);
    values_[g] = backend.empty(Shape{static_cast<int64_t>(n)});
    grads_[g] = backend.empty(Shape{static_cast<int64_t>(n)});
    states_[g] = backend.empty(Shape{static_cast<int64_t>(n)});
    backend.fill(values_[g].f32(), n, 0.f);  // the gaps between params stay zero
    backend.fill(grads_[g].f32(), n, 0.f);
    backend.fill(states_[g].f32(), n, 0.f);
    size_t offset = 0;
    for (Param* p : *groups[g]) {
      Shape s = p->local_shape();
      p->value = values_[g].view(offset, s);
      p->grad = grads_[g].view(offset, s);
      p->state = states_[g].view(offset, s);
      offset += p->stored_numel();
    }
  }
  size_t buffer_size = 0;
  for (Param* b : buffers_) {
    OWT_CHECK(!b->sharded(), "buffer ", b->name, " must be replicated");
    buffer_size += b->stored_numel();
  }
  buffer_values_ = backend.empty(Shape{static_cast<int64_t>(std::max<size_t>(buffer_size, 1))});
  size_t offset = 0;
  for (Param* b : buffers_) {
    b->value = buffer_values_.view(offset, b->full_shape);
    offset += b->stored_numel();
  }
}

size_t ParamStore::offset_of(const Param* p) const {
  size_t offset = 0;
  for (Param* q : p->summed_over_workers() ? summed_ : model_stage_) {
    if (q == p) return offset;
    offset += q->stored_numel();
  }
  OWT_CHECK(false, "param ", p->name, " is not in the store");
  return 0;
}

void ParamStore::zero_grads(Backend& backend) {
  for (int g = 0; g < 2; ++g) backend.fill(grads_[g].f32(), sizes_[g], 0.f);
}

void ParamStore::zero_model_stage_grads(Backend& backend) {
  backend.fill(grads_[1].f32(), sizes_[1], 0.f);
}

}  // namespace owt
