// Scratch: a layer-owned device buffer that grows to the largest shape asked for and hands out
// views, so a layer can keep per-pass state (argmax, LRN scale) without reallocating each step.
#pragma once
#include "owt/backend/backend.h"

namespace owt {

class Scratch {
 public:
  // A tensor of `shape` backed by this scratch buffer (reallocated only when it must grow).
  Tensor get(Backend& backend, const Shape& shape, DType dtype = DType::F32) {
    if (!buf_.defined() || buf_.capacity() < static_cast<size_t>(shape.numel()) ||
        buf_.dtype() != dtype)
      buf_ = backend.empty(Shape{shape.numel()}, dtype);
    return buf_.view(0, shape);
  }

 private:
  Tensor buf_;
};

}  // namespace owt
