// The two CPU convolution engines behind CpuBackend's conv2d_* ops, compared by
// tools/bench/conv_bench: oneDNN (DnnlConv: everything except backward-data into < 8 input
// channels) and im2col + sgemm (Im2colConv: that case, and the plain reference).
#pragma once
#include <map>
#include <memory>
#include <vector>

#include "owt/backend/backend.h"

namespace owt {

// Shapes for all three ops: x, dx (N, C, H, W); w, dw (K, C, KH, KW); bias, db (K);
// y, dy (N, K, OH, OW). backward_filter accumulates: dw += ..., db += ... (db may be null).
class Im2colConv {
 public:
  void forward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
  void backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx);
  void backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db);

 private:
  float* workspace(size_t floats);  // grow-only scratch: per-thread column buffers etc.
  std::vector<float> workspace_;
};

// bf16: x, w and dy are rounded to bfloat16 for the convolution (y, dx, dw and db stay fp32,
// accumulated in fp32), as cuDNN's bf16 convolutions on the GPU.
class DnnlConv {
 public:
  explicit DnnlConv(bool bf16 = false);
  ~DnnlConv();
  void forward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
  void backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx);
  void backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db);

 private:
  struct Impl;   // engine, stream and primitives cached per geometry (cpu_conv_dnnl.cpp)
  struct Plan;
  Plan& plan(const ConvGeom& g);
  std::unique_ptr<Impl> impl_;
  bool bf16_;
};

}  // namespace owt
