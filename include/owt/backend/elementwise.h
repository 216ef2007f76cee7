// Elementwise maths shared by both backends, written once as OWT_HOST_DEVICE functions:
// the CPU backend runs them in OpenMP loops, the CUDA backend in kernels (docs/ARCHITECTURE.md, "Layering").
#pragma once
#include <cstdint>

#include "owt/core/host_device.h"
#include "owt/core/philox.h"

namespace owt {

OWT_HOST_DEVICE float relu_forward_one(float x) { return x > 0.f ? x : 0.f; }
// Gradient through ReLU from its output y (y > 0 exactly where x > 0).
OWT_HOST_DEVICE float relu_backward_one(float y, float dy) { return y > 0.f ? dy : 0.f; }

// Where a dropout mask is drawn: a layer, a step, and the global coordinates of the element.
struct DropoutKey {
  RngKey key;           // rng_key(seed, Purpose::Dropout)
  uint32_t layer;       // name_hash(layer name)
  uint32_t step;        // optimizer step (so every step draws a fresh mask)
  int64_t row0;         // global example index of row 0
  int64_t col0;         // global feature index of column 0 (non-zero for a feature shard)
  float rate;           // probability of dropping
};

// Inverted dropout multiplier for element (row, col) of the local block: 0 or 1/(1-rate).
OWT_HOST_DEVICE float dropout_scale(const DropoutKey& k, int64_t row, int64_t col) {
  float u = philox_uniform(k.key, k.layer, k.step, static_cast<uint32_t>(k.row0 + row),
                           static_cast<uint32_t>(k.col0 + col));
  return u >= k.rate ? 1.f / (1.f - k.rate) : 0.f;
}

// SGD with momentum and decoupled-from-nothing L2 weight decay, PyTorch semantics:
//   g' = g + wd * w;  v = mu * v + g';  w -= lr * v
// and with `nesterov` PyTorch's SGD(nesterov=True): the same v, then w -= lr * (g' + mu * v).
struct SgdStep {
  float lr, momentum, weight_decay;
  bool nesterov = false;
};
OWT_HOST_DEVICE void sgd_one(const SgdStep& s, float* w, float g, float* v) {
  float gw = g + s.weight_decay * *w;
  float vn = s.momentum * *v + gw;
  *v = vn;
  if (s.nesterov)
    *w -= s.lr * (gw + s.momentum * vn);
  else
    *w -= s.lr * vn;
}

// The softmax cross-entropy gradient's factors: the loss's scale (1/B for the mean over the
// global batch) and its target distribution q = on_target * onehot + uniform, which is
// PyTorch's label smoothing eps over C classes with on_target = 1 - eps, uniform = eps / C
// (the plain loss: 1 and 0, the only values a bare scale converts to).
struct XentGrad {
  XentGrad(float scale_, float smoothing = 0.f, int64_t classes = 1)
      : scale(scale_), on_target(1.f - smoothing),
        uniform(static_cast<float>(static_cast<double>(smoothing) / static_cast<double>(classes))) {}
  float scale, on_target, uniform;
};

// Softmax cross-entropy gradient of one logit: scale * (softmax - q).
OWT_HOST_DEVICE float xent_grad_one(float logit, float row_max, float row_sumexp, bool is_target,
                                    const XentGrad& g) {
  float p = __builtin_expf(logit - row_max) / row_sumexp;
  return g.scale * (p - (is_target ? g.on_target : 0.f) - g.uniform);
}

}  // namespace owt
