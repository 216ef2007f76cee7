// Param: one learnable tensor of a layer and how it is laid out across workers. Generic code
// (init, gradient sync, optimizer, checkpoints) iterates over params and never asks layer types.
#pragma once
#include <cstdint>
#include <string>

#include "owt/core/tensor.h"

namespace owt {

enum class Layout { Replicated, Sharded };

// How a parameter is initialised; draws are keyed by (seed, name, full-tensor element index),
// so a shard initialises exactly like the same rows of the unsharded tensor.
struct InitSpec {
  enum Kind { Constant, Normal, Uniform } kind = Constant;
  float a = 0.f;  // Constant: value; Normal: mean; Uniform: low
  float b = 0.f;  // Normal: std; Uniform: high
};

struct Param {
  std::string name;       // "<layer>.weight", "<layer>.bias"
  Shape full_shape;       // the unsharded tensor, PyTorch layout
  Layout layout = Layout::Replicated;
  int axis = 0;           // sharded axis (only for Layout::Sharded)
  int64_t begin = 0;      // this worker's slice [begin, end) along `axis`
  int64_t end = 0;
  InitSpec init;
  float lr_mult = 1.f;
  float wd_mult = 1.f;
  bool frozen = false;
  // Replicated params are summed over workers after backward, unless each worker already
  // computed the whole gradient (layers that see the whole global batch on every worker).
  bool grad_needs_sum = true;
  Tensor value;           // local shape: full_shape with `axis` cut to [begin, end)
  Tensor grad;            // same shape as value; accumulated by backward, zeroed each step
  Tensor state;           // optimizer state (SGD momentum), same shape as value

  // Its gradient is summed over workers (replicated, computed on this worker's rows only).
  bool summed_over_workers() const { return layout == Layout::Replicated && grad_needs_sum; }

  Shape local_shape() const {
    if (layout == Layout::Replicated) return full_shape;
    std::vector<int64_t> d = full_shape.dims();
    d[axis] = end - begin;
    return Shape(d);
  }
};

}  // namespace owt
