// Param: one learnable tensor of a layer (or a buffer: saved, untrained state such as BatchNorm's
// running statistics, value only) and its placement across workers. Generic code (init,
// gradient sync, optimizer, checkpoints) iterates over params and never asks layer types.
#pragma once
#include <cstdint>
#include <string>

#include "owt/core/tensor.h"
#include "owt/nn/placement.h"

namespace owt {

// How a parameter is initialised; draws are keyed by (seed, name, full-tensor element index),
// so a shard initialises exactly like the same rows of the unsharded tensor.
struct InitSpec {
  enum Kind { Constant, Normal, Uniform } kind = Constant;
  float a = 0.f;  // Constant: value; Normal: mean; Uniform: low
  float b = 0.f;  // Normal: std; Uniform: high
};

// A param's full tensor viewed around its sharded axis as (outer, full, inner), of which this
// worker holds rows [begin, begin + n) of `full`: its local tensor is (outer, n, inner). A
// replicated param is (1, numel, 1), all of it.
struct ShardView {
  int64_t outer = 1, full = 0, inner = 1, begin = 0, n = 0;
};

// Every param's value, gradient and state start 256 bytes (64 floats) apart in the store's
// buffers (ParamStore), the alignment cuDNN, cuBLAS and AVX-512 loads want; the gaps hold zeros
// and travel with the gradient buckets' all-reduces (at most 252 bytes per param).
constexpr int64_t kParamAlignElements = 64;
inline int64_t padded_numel(int64_t n) {
  return (n + kParamAlignElements - 1) / kParamAlignElements * kParamAlignElements;
}

struct Param {
  std::string name;       // "<layer>.weight", "<layer>.bias"
  Shape full_shape;       // the unsharded tensor, PyTorch layout
  // The value: Replicate, or Shard(axis) holding [begin, end) of full_shape[axis].
  Placement placement;
  // The gradient after backward: Partial when the layer saw only this worker's rows (a
  // replicated param of the data-parallel stage: summed over workers in buckets), otherwise
  // like the value (complete where it lives). Set by the network from the layer's input.
  Placement grad_placement;
  InitSpec init;
  float lr_mult = 1.f;
  float wd_mult = 1.f;
  bool frozen = false;
  // A counter kept as one float in memory and saved as a 0-dim I64 tensor, as PyTorch's
  // buffers are (BatchNorm's num_batches_tracked). Only buffers (Layer::buffers) are integer.
  bool integer = false;
  Tensor value;           // local shape: full_shape with the sharded axis cut to [begin, end)
  Tensor grad;            // same shape as value; accumulated by backward, zeroed each step
  Tensor state;           // optimizer state (SGD momentum), same shape as value

  bool sharded() const { return placement.kind == Placement::Kind::Shard; }
  // Its gradient is summed over workers (replicated, computed on this worker's rows only).
  bool summed_over_workers() const { return grad_placement.is_partial(); }

  Shape local_shape() const {
    if (!sharded()) return full_shape;
    std::vector<int64_t> d = full_shape.dims();
    d[placement.dim] = placement.end - placement.begin;
    return Shape(d);
  }

  // Elements it takes in the store's buffers: its local tensor and the gap after it.
  int64_t stored_numel() const { return padded_numel(local_shape().numel()); }

  ShardView shard_view() const {
    ShardView v;
    v.full = v.n = full_shape.numel();
    if (!sharded()) return v;
    for (int d = 0; d < placement.dim; ++d) v.outer *= full_shape[d];
    for (int d = placement.dim + 1; d < full_shape.rank(); ++d) v.inner *= full_shape[d];
    v.full = full_shape[placement.dim];
    v.begin = placement.begin;
    v.n = placement.end - placement.begin;
    return v;
  }
};

}  // namespace owt
