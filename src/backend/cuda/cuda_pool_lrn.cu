// CudaBackend max/average pooling and cross-channel LRN: own kernels that follow the CPU
// backend (cpu_pool.cpp, cpu_lrn.cpp) line by line: the same windows, clipping, argmax rule
// (flat index in the plane, first maximum wins, NaN wins, -1 for an empty window) and the same
// summation order. Backward passes gather per input element instead of scattering per output,
// so they need no atomics and add the same terms in the same order as the CPU.
#include <cmath>

#include "cuda_backend.h"
#include "cuda_check.h"
#include "cuda_launch.cuh"

namespace owt {

using cuda_detail::grid_for;
using cuda_detail::kThreads;

namespace {

// Outputs o whose window [o*stride - pad, o*stride - pad + size) contains input i: [lo, hi].
__device__ void covering(int i, int size, int stride, int pad, int outs, int* lo, int* hi) {
  int num = i + pad - size + 1;  // o*stride >= num
  *lo = num <= 0 ? 0 : (num + stride - 1) / stride;
  *hi = min(outs - 1, (i + pad) / stride);
}

__global__ void maxpool_forward_kernel(PoolGeom g, const float* x, float* y, int32_t* argmax,
                                       size_t n) {
  OWT_GRID_LOOP(idx, n) {
    const int ow = static_cast<int>(idx % g.ow), oh = static_cast<int>(idx / g.ow % g.oh);
    const size_t pl = idx / (static_cast<size_t>(g.ow) * g.oh);
    const float* xp = x + pl * g.h * g.w;
    int h0 = oh * g.stride - g.pad, h1 = min(h0 + g.size, g.h);
    h0 = max(h0, 0);
    int w0 = ow * g.stride - g.pad, w1 = min(w0 + g.size, g.w);
    w0 = max(w0, 0);
    float best = -INFINITY;
    int32_t arg = -1;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) {
        float v = xp[ih * g.w + iw];
        if (arg < 0 || v > best || isnan(v)) {  // PyTorch's rule, as the CPU
          best = v;
          arg = ih * g.w + iw;
        }
      }
    y[idx] = arg < 0 ? 0.f : best;
    argmax[idx] = arg;
  }
}

// dx (N, C, H, W): the sum of dy over the outputs whose argmax is this element.
__global__ void maxpool_backward_kernel(PoolGeom g, const float* dy, const int32_t* argmax,
                                        float* dx, size_t n) {
  OWT_GRID_LOOP(idx, n) {
    const int iw = static_cast<int>(idx % g.w), ih = static_cast<int>(idx / g.w % g.h);
    const size_t pl = idx / (static_cast<size_t>(g.w) * g.h);
    const float* dyp = dy + pl * g.oh * g.ow;
    const int32_t* ap = argmax + pl * g.oh * g.ow;
    const int32_t me = ih * g.w + iw;
    int oh0, oh1, ow0, ow1;
    covering(ih, g.size, g.stride, g.pad, g.oh, &oh0, &oh1);
    covering(iw, g.size, g.stride, g.pad, g.ow, &ow0, &ow1);
    float s = 0.f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow)
        if (ap[oh * g.ow + ow] == me) s += dyp[oh * g.ow + ow];
    dx[idx] = s;
  }
}

// The CPU's avg_window: the clipped window and the divisor counted over the window clipped to
// the padded input (count_include_pad).
struct AvgWindow {
  int h0, h1, w0, w1;
  float inv_count;
};
__device__ AvgWindow avg_window(const PoolGeom& g, int oh, int ow) {
  int h0 = oh * g.stride - g.pad, w0 = ow * g.stride - g.pad;
  int h1 = min(h0 + g.size, g.h + g.pad), w1 = min(w0 + g.size, g.w + g.pad);
  int count = (h1 - h0) * (w1 - w0);
  return AvgWindow{max(h0, 0), min(h1, g.h), max(w0, 0), min(w1, g.w),
                   count > 0 ? 1.f / count : 0.f};
}

__global__ void avgpool_forward_kernel(PoolGeom g, const float* x, float* y, size_t n) {
  OWT_GRID_LOOP(idx, n) {
    const int ow = static_cast<int>(idx % g.ow), oh = static_cast<int>(idx / g.ow % g.oh);
    const size_t pl = idx / (static_cast<size_t>(g.ow) * g.oh);
    const float* xp = x + pl * g.h * g.w;
    AvgWindow win = avg_window(g, oh, ow);
    float s = 0.f;
    for (int ih = win.h0; ih < win.h1; ++ih)
      for (int iw = win.w0; iw < win.w1; ++iw) s += xp[ih * g.w + iw];
    y[idx] = s * win.inv_count;
  }
}

__global__ void avgpool_backward_kernel(PoolGeom g, const float* dy, float* dx, size_t n) {
  OWT_GRID_LOOP(idx, n) {
    const int iw = static_cast<int>(idx % g.w), ih = static_cast<int>(idx / g.w % g.h);
    const size_t pl = idx / (static_cast<size_t>(g.w) * g.h);
    const float* dyp = dy + pl * g.oh * g.ow;
    int oh0, oh1, ow0, ow1;
    covering(ih, g.size, g.stride, g.pad, g.oh, &oh0, &oh1);
    covering(iw, g.size, g.stride, g.pad, g.ow, &ow0, &ow1);
    float s = 0.f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) s += dyp[oh * g.ow + ow] * avg_window(g, oh, ow).inv_count;
    dx[idx] = s;
  }
}

// a * s^-beta; beta = 0.75 as 1 / sqrt(s sqrt(s)), exactly as cpu_lrn.cpp.
__device__ float times_pow_neg_beta(float a, float s, float beta) {
  return beta == 0.75f ? a / sqrtf(s * sqrtf(s)) : a * powf(s, -beta);
}

// One thread per element of (N, C, H*W); window(c) = [c - size/2, c + (size-1)/2].
__global__ void lrn_forward_kernel(LrnGeom g, const float* x, float* scale, float* y, size_t n) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w;
  const float a = g.alpha / g.size;
  OWT_GRID_LOOP(idx, n) {
    const int64_t i = idx % hw;
    const int c = static_cast<int>(idx / hw % g.c);
    const int64_t img = static_cast<int64_t>(idx / hw / g.c);
    int c0 = max(0, c - g.size / 2), c1 = min(g.c - 1, c + (g.size - 1) / 2);
    float s = 0.f;
    for (int cc = c0; cc <= c1; ++cc) {
      float v = x[(img * g.c + cc) * hw + i];
      s += v * v;
    }
    s = g.k + a * s;
    scale[idx] = s;
    y[idx] = times_pow_neg_beta(x[idx], s, g.beta);
  }
}

// dx[c] = dy[c] scale[c]^-beta - 2 alpha beta / size * x[c] * sum_{c'} dy[c'] y[c'] / scale[c']
// over c' in [c - (size-1)/2, c + size/2].
__global__ void lrn_backward_kernel(LrnGeom g, const float* x, const float* y, const float* scale,
                                    const float* dy, float* dx, size_t n) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w;
  const float coef = 2.f * g.alpha * g.beta / g.size;
  OWT_GRID_LOOP(idx, n) {
    const int64_t i = idx % hw;
    const int c = static_cast<int>(idx / hw % g.c);
    const int64_t img = static_cast<int64_t>(idx / hw / g.c);
    int c0 = max(0, c - (g.size - 1) / 2), c1 = min(g.c - 1, c + g.size / 2);
    float acc = 0.f;
    for (int cc = c0; cc <= c1; ++cc) {
      const int64_t off = (img * g.c + cc) * hw + i;
      acc += dy[off] * y[off] / scale[off];
    }
    float d = times_pow_neg_beta(dy[idx], scale[idx], g.beta);
    dx[idx] = d - coef * x[idx] * acc;
  }
}

size_t pool_outputs(const PoolGeom& g) { return static_cast<size_t>(g.n) * g.c * g.oh * g.ow; }
size_t pool_inputs(const PoolGeom& g) { return static_cast<size_t>(g.n) * g.c * g.h * g.w; }
size_t lrn_elements(const LrnGeom& g) { return static_cast<size_t>(g.n) * g.c * g.h * g.w; }

}  // namespace

void CudaBackend::maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  size_t n = pool_outputs(g);
  if (n == 0) return;
  wrote(y, n * sizeof(float));
  wrote(argmax, n * sizeof(int32_t));
  maxpool_forward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, x, y, argmax, n);
  OWT_CUDA_CHECK_LAUNCH(maxpool_forward_kernel);
}

void CudaBackend::maxpool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax,
                                   float* dx) {
  size_t n = pool_inputs(g);
  if (n == 0) return;
  wrote(dx, n * sizeof(float));
  maxpool_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, dy, argmax, dx, n);
  OWT_CUDA_CHECK_LAUNCH(maxpool_backward_kernel);
}

void CudaBackend::avgpool_forward(const PoolGeom& g, const float* x, float* y) {
  size_t n = pool_outputs(g);
  if (n == 0) return;
  wrote(y, n * sizeof(float));
  avgpool_forward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, x, y, n);
  OWT_CUDA_CHECK_LAUNCH(avgpool_forward_kernel);
}

void CudaBackend::avgpool_backward(const PoolGeom& g, const float* dy, float* dx) {
  size_t n = pool_inputs(g);
  if (n == 0) return;
  wrote(dx, n * sizeof(float));
  avgpool_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, dy, dx, n);
  OWT_CUDA_CHECK_LAUNCH(avgpool_backward_kernel);
}

void CudaBackend::lrn_forward(const LrnGeom& g, const float* x, float* scale, float* y) {
  size_t n = lrn_elements(g);
  if (n == 0) return;
  wrote(scale, n * sizeof(float));
  wrote(y, n * sizeof(float));
  lrn_forward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, x, scale, y, n);
  OWT_CUDA_CHECK_LAUNCH(lrn_forward_kernel);
}

void CudaBackend::lrn_backward(const LrnGeom& g, const float* x, const float* y,
                               const float* scale, const float* dy, float* dx) {
  size_t n = lrn_elements(g);
  if (n == 0) return;
  wrote(dx, n * sizeof(float));
  lrn_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, x, y, scale, dy, dx, n);
  OWT_CUDA_CHECK_LAUNCH(lrn_backward_kernel);
}

}  // namespace owt
