// CpuBackend max and average pooling, forward and backward, one OpenMP task per (n, c) plane.
// Windows start at o*stride - pad and are clipped at the input border; the output size
// (oh, ow) comes from the caller. Average pooling divides by the window clipped to the padded
// input (count_include_pad, as PyTorch's default).
#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu_backend.h"

namespace owt {

namespace {
int64_t planes(const PoolGeom& g) { return static_cast<int64_t>(g.n) * g.c; }
// Small problems run serially: an OpenMP region costs more than it saves there.
bool worth_threads(const PoolGeom& g) {
  return planes(g) > 1 && planes(g) * g.oh * g.ow * g.size * g.size >= (1 << 15);
}
}  // namespace

// x (N, C, H, W) -> y, argmax (N, C, OH, OW); argmax is the flat index h*W + w in the plane,
// -1 for a window that covers no input. The first maximum wins; a NaN wins (PyTorch).
void CpuBackend::maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int64_t pl = 0; pl < planes(g); ++pl) {
    const float* xp = x + pl * g.h * g.w;
    float* yp = y + pl * g.oh * g.ow;
    int32_t* ap = argmax + pl * g.oh * g.ow;
    for (int oh = 0; oh < g.oh; ++oh) {
      int h0 = oh * g.stride - g.pad, h1 = std::min(h0 + g.size, g.h);
      h0 = std::max(h0, 0);
      for (int ow = 0; ow < g.ow; ++ow) {
        int w0 = ow * g.stride - g.pad, w1 = std::min(w0 + g.size, g.w);
        w0 = std::max(w0, 0);
        float best = -std::numeric_limits<float>::infinity();
        int32_t arg = -1;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) {
            float v = xp[ih * g.w + iw];
            if (arg < 0 || v > best || std::isnan(v)) {  // PyTorch's rule
              best = v;
              arg = ih * g.w + iw;
            }
          }
        yp[oh * g.ow + ow] = arg < 0 ? 0.f : best;
        ap[oh * g.ow + ow] = arg;
      }
    }
  }
}

// dx (N, C, H, W) = scatter-add of dy (N, C, OH, OW) to the argmax positions.
void CpuBackend::maxpool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax,
                                  float* dx) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int64_t pl = 0; pl < planes(g); ++pl) {
    float* dxp = dx + pl * g.h * g.w;
    const float* dyp = dy + pl * g.oh * g.ow;
    const int32_t* ap = argmax + pl * g.oh * g.ow;
    std::fill(dxp, dxp + g.h * g.w, 0.f);
    for (int i = 0; i < g.oh * g.ow; ++i)
      if (ap[i] >= 0) dxp[ap[i]] += dyp[i];
  }
}

namespace {
// The window of output (oh, ow): clipped input rows/cols [h0, h1) x [w0, w1), and the divisor
// counted over the window clipped to the padded input.
struct AvgWindow {
  int h0, h1, w0, w1;
  float inv_count;
};
AvgWindow avg_window(const PoolGeom& g, int oh, int ow) {
  int h0 = oh * g.stride - g.pad, w0 = ow * g.stride - g.pad;
  int h1 = std::min(h0 + g.size, g.h + g.pad), w1 = std::min(w0 + g.size, g.w + g.pad);
  int count = (h1 - h0) * (w1 - w0);
  return AvgWindow{std::max(h0, 0), std::min(h1, g.h), std::max(w0, 0), std::min(w1, g.w),
                   count > 0 ? 1.f / count : 0.f};
}
}  // namespace

// x (N, C, H, W) -> y (N, C, OH, OW)
void CpuBackend::avgpool_forward(const PoolGeom& g, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int64_t pl = 0; pl < planes(g); ++pl) {
    const float* xp = x + pl * g.h * g.w;
    float* yp = y + pl * g.oh * g.ow;
    for (int oh = 0; oh < g.oh; ++oh)
      for (int ow = 0; ow < g.ow; ++ow) {
        AvgWindow win = avg_window(g, oh, ow);
        float s = 0.f;
        for (int ih = win.h0; ih < win.h1; ++ih)
          for (int iw = win.w0; iw < win.w1; ++iw) s += xp[ih * g.w + iw];
        yp[oh * g.ow + ow] = s * win.inv_count;
      }
  }
}

// dy (N, C, OH, OW) -> dx (N, C, H, W)
void CpuBackend::avgpool_backward(const PoolGeom& g, const float* dy, float* dx) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int64_t pl = 0; pl < planes(g); ++pl) {
    float* dxp = dx + pl * g.h * g.w;
    const float* dyp = dy + pl * g.oh * g.ow;
    std::fill(dxp, dxp + g.h * g.w, 0.f);
    for (int oh = 0; oh < g.oh; ++oh)
      for (int ow = 0; ow < g.ow; ++ow) {
        AvgWindow win = avg_window(g, oh, ow);
        float d = dyp[oh * g.ow + ow] * win.inv_count;
        for (int ih = win.h0; ih < win.h1; ++ih)
          for (int iw = win.w0; iw < win.w1; ++iw) dxp[ih * g.w + iw] += d;
      }
  }
}

}  // namespace owt
