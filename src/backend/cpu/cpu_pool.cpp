// CpuBackend max and average pooling, forward and backward, one OpenMP task per (n, c) plane.
// Windows start at o*stride - pad and are clipped at the input border; the output size
// (oh, ow) comes from the caller. Average pooling divides by the window clipped to the padded
// input (count_include_pad, as PyTorch's default).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu_backend.h"

namespace owt {

namespace {
int64_t planes(const PoolGeom& g) { return static_cast<int64_t>(g.n) * g.c; }
// Small problems run serially: an OpenMP region costs more than it saves there.
bool worth_threads(const PoolGeom& g) {
  return planes(g) > 1 && planes(g) * g.oh * g.ow * g.size * g.size >= (1 << 15);
}


// Max pooling is written so that the compiler vectorises it and never branches on the data:
// comparisons feed bitwise selects (the data decide them, so a branch mispredicts about half the
// time on ReLU outputs: 5x slower, measured), and loops run along output columns.
// Every window is scanned in row-major order; a later element takes over when it is greater
// or NaN (PyTorch's rule: the first maximum wins, a NaN wins).
inline void take_max(float v, int32_t index, float* best, int32_t* arg) {
  const int32_t take = -static_cast<int32_t>((v > *best) | (v != v));  // all ones or zero
  int32_t v_bits, best_bits;
  std::memcpy(&v_bits, &v, sizeof v);
  std::memcpy(&best_bits, best, sizeof v);
  best_bits = (v_bits & take) | (best_bits & ~take);
  std::memcpy(best, &best_bits, sizeof v);
  *arg = (index & take) | (*arg & ~take);
}

// 2x2 windows, stride 2, no padding (the common case): output row oh reads input rows r0, r1
// (flat index of r0's first element: row0). Eight outputs at a time through fixed-size arrays,
// so that every step vectorises although rows are short (7 and 14 outputs in fmnist); a short
// last chunk repeats its last window in the unused lanes. Each row's pair first, then the two
// rows: the same winner as the row-major scan (a NaN in the bottom row is the last NaN; else
// the bottom wins only when strictly greater, so ties keep the first maximum).
void maxpool_2x2_row(const float* r0, const float* r1, int32_t row0, int32_t w, int ow,
                     float* yrow, int32_t* arow) {
  constexpr int kLanes = 8;
  for (int o0 = 0; o0 < ow; o0 += kLanes) {
    const int n = std::min(kLanes, ow - o0);
    float t0[kLanes], t1[kLanes], b0[kLanes], b1[kLanes], y[kLanes];
    int32_t arg[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const int c = 2 * (o0 + std::min(l, n - 1));
      t0[l] = r0[c], t1[l] = r0[c + 1], b0[l] = r1[c], b1[l] = r1[c + 1];
    }
    for (int l = 0; l < kLanes; ++l) {
      const int32_t at = row0 + 2 * (o0 + std::min(l, n - 1));
      float top = t0[l], bottom = b0[l];
      int32_t top_at = at, bottom_at = at + w;
      take_max(t1[l], at + 1, &top, &top_at);
      take_max(b1[l], at + w + 1, &bottom, &bottom_at);
      take_max(bottom, bottom_at, &top, &top_at);
      y[l] = top;
      arg[l] = top_at;
    }
    for (int l = 0; l < n; ++l) yrow[o0 + l] = y[l], arow[o0 + l] = arg[l];
  }
}

// Columns [lo, hi) of output row oh whose windows lie inside the input horizontally (rows
// [h0, h1) already clipped), with ow innermost; Stride is a compile-time constant when it is
// one of the usual ones (0: read it from g), so the strided loads vectorise.
template <int Stride>
void maxpool_inner_columns(const PoolGeom& g, const float* xp, int h0, int h1, int lo, int hi,
                           float* yrow, int32_t* arow) {
  const int stride = Stride > 0 ? Stride : g.stride;
  for (int ow = lo; ow < hi; ++ow) {
    const int32_t first = h0 * g.w + ow * stride - g.pad;
    yrow[ow] = xp[first];
    arow[ow] = first;
  }
  for (int ih = h0; ih < h1; ++ih)
    for (int kj = 0; kj < g.size; ++kj) {
      const int32_t off = ih * g.w - g.pad + kj;
      const float* src = xp + off;
      for (int ow = lo; ow < hi; ++ow) take_max(src[ow * stride], off + ow * stride, &yrow[ow], &arow[ow]);
    }
}

// Output row oh of one plane, any geometry: inner columns vectorised, clipped border windows
// one by one.
void maxpool_row(const PoolGeom& g, const float* xp, int oh, float* yrow, int32_t* arow) {
  int h0 = oh * g.stride - g.pad;
  const int h1 = std::min(h0 + g.size, g.h);
  h0 = std::max(h0, 0);
  // Columns whose window [ow*stride - pad, + size) lies within [0, w).
  const int lo = std::min(g.ow, (g.pad + g.stride - 1) / g.stride);
  const int last_fit = g.w + g.pad - g.size;
  const int hi = last_fit < 0 ? lo : std::max(lo, std::min(g.ow, last_fit / g.stride + 1));
  auto border = [&](int ow) {
    int w0 = ow * g.stride - g.pad;
    const int w1 = std::min(w0 + g.size, g.w);
    w0 = std::max(w0, 0);
    float best = 0.f;
    int32_t arg = -1;  // a window that covers no input
    if (h0 < h1 && w0 < w1) {
      best = xp[h0 * g.w + w0];
      arg = h0 * g.w + w0;
      for (int ih = h0; ih < h1; ++ih)
        for (int iw = w0; iw < w1; ++iw) take_max(xp[ih * g.w + iw], ih * g.w + iw, &best, &arg);
    }
    yrow[ow] = best;
    arow[ow] = arg;
  };
  if (h0 >= h1) {
    for (int ow = 0; ow < g.ow; ++ow) border(ow);
    return;
  }
  for (int ow = 0; ow < lo; ++ow) border(ow);
  if (g.stride == 1)
    maxpool_inner_columns<1>(g, xp, h0, h1, lo, hi, yrow, arow);
  else if (g.stride == 2)
    maxpool_inner_columns<2>(g, xp, h0, h1, lo, hi, yrow, arow);
  else
    maxpool_inner_columns<0>(g, xp, h0, h1, lo, hi, yrow, arow);
  for (int ow = hi; ow < g.ow; ++ow) border(ow);
}

bool is_2x2_tiling(const PoolGeom& g) {
  return g.size == 2 && g.stride == 2 && g.pad == 0 && 2 * g.oh <= g.h && 2 * g.ow <= g.w;
}
}  // namespace

// x (N, C, H, W) -> y, argmax (N, C, OH, OW); argmax is the flat index h*W + w in the plane,
// -1 for a window that covers no input. The first maximum wins; a NaN wins (PyTorch).
void CpuBackend::maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int64_t pl = 0; pl < planes(g); ++pl) {
    const float* xp = x + pl * g.h * g.w;
    for (int oh = 0; oh < g.oh; ++oh) {
      float* yrow = y + (pl * g.oh + oh) * g.ow;
      int32_t* arow = argmax + (pl * g.oh + oh) * g.ow;
      if (is_2x2_tiling(g))
        maxpool_2x2_row(xp + 2 * oh * g.w, xp + (2 * oh + 1) * g.w, 2 * oh * g.w, g.w, g.ow, yrow, arow);
      else
        maxpool_row(g, xp, oh, yrow, arow);
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
