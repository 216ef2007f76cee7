// Im2colConv: convolution as im2col + sgemm (oneDNN's), one image per OpenMP thread (sgemm
// then runs single-threaded), per-thread column buffers and per-thread dw accumulators.
// The plain reference for DnnlConv (tests, tools/bench/conv_bench).
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu_conv.h"
#include "cpu_gemm.h"

namespace owt {

namespace {

int ceil_div_nonneg(int a, int b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// Output columns ow whose input column ow*sw - pw + kj lies inside [0, w): [lo, hi).
void valid_ow(const ConvGeom& g, int kj, int* lo, int* hi) {
  *lo = std::min(g.ow, ceil_div_nonneg(g.pad_w - kj, g.stride_w));
  *hi = std::max(*lo, std::min(g.ow, ceil_div_nonneg(g.w + g.pad_w - kj, g.stride_w)));
}

// x (C, H, W) -> col (C*KH*KW, OH*OW)
void im2col(const ConvGeom& g, const float* x, float* col) {
  const int64_t p = static_cast<int64_t>(g.oh) * g.ow;
  for (int c = 0; c < g.c; ++c) {
    const float* xc = x + static_cast<int64_t>(c) * g.h * g.w;
    for (int ki = 0; ki < g.kh; ++ki) {
      for (int kj = 0; kj < g.kw; ++kj) {
        float* row = col + ((static_cast<int64_t>(c) * g.kh + ki) * g.kw + kj) * p;
        int lo, hi;
        valid_ow(g, kj, &lo, &hi);
        for (int oh = 0; oh < g.oh; ++oh) {
          float* out = row + static_cast<int64_t>(oh) * g.ow;
          int ih = oh * g.stride_h - g.pad_h + ki;
          if (ih < 0 || ih >= g.h) {
            std::fill(out, out + g.ow, 0.f);
            continue;
          }
          std::fill(out, out + lo, 0.f);
          std::fill(out + hi, out + g.ow, 0.f);
          const float* xr = xc + static_cast<int64_t>(ih) * g.w - g.pad_w + kj;
          for (int ow = lo; ow < hi; ++ow) out[ow] = xr[ow * g.stride_w];
        }
      }
    }
  }
}

// dx (C, H, W) += col2im(col (C*KH*KW, OH*OW))
void col2im_add(const ConvGeom& g, const float* col, float* dx) {
  const int64_t p = static_cast<int64_t>(g.oh) * g.ow;
  for (int c = 0; c < g.c; ++c) {
    float* dxc = dx + static_cast<int64_t>(c) * g.h * g.w;
    for (int ki = 0; ki < g.kh; ++ki) {
      for (int kj = 0; kj < g.kw; ++kj) {
        const float* row = col + ((static_cast<int64_t>(c) * g.kh + ki) * g.kw + kj) * p;
        int lo, hi;
        valid_ow(g, kj, &lo, &hi);
        for (int oh = 0; oh < g.oh; ++oh) {
          int ih = oh * g.stride_h - g.pad_h + ki;
          if (ih < 0 || ih >= g.h) continue;
          const float* in = row + static_cast<int64_t>(oh) * g.ow;
          float* dr = dxc + static_cast<int64_t>(ih) * g.w - g.pad_w + kj;
          for (int ow = lo; ow < hi; ++ow) dr[ow * g.stride_w] += in[ow];
        }
      }
    }
  }
}

// One image per thread when the batch covers the threads; else images in turn, sgemm threaded.
bool per_image_threads(const ConvGeom& g) { return g.n >= omp_get_max_threads(); }

// Runs body(n, col) for every image n, each thread with its own column buffer of col_size
// floats from `cols` (col_size x threads).
template <typename Body>
void for_each_image(const ConvGeom& g, float* cols, size_t col_size, Body&& body) {
#pragma omp parallel if (per_image_threads(g))
  {
    float* col = cols + col_size * omp_get_thread_num();
#pragma omp for schedule(static)
    for (int n = 0; n < g.n; ++n) body(n, col);
  }
}

}  // namespace

float* Im2colConv::workspace(size_t floats) {
  if (workspace_.size() < floats) workspace_.resize(floats);
  return workspace_.data();
}

void Im2colConv::forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                         float* y) {
  const int ckk = g.c * g.kh * g.kw, p = g.oh * g.ow;
  const size_t col_size = static_cast<size_t>(ckk) * p;
  for_each_image(g, workspace(col_size * omp_get_max_threads()), col_size, [&](int n, float* col) {
    const float* xn = x + static_cast<int64_t>(n) * g.c * g.h * g.w;
    float* yn = y + static_cast<int64_t>(n) * g.k * p;
    im2col(g, xn, col);
    for (int k = 0; k < g.k; ++k)
      std::fill(yn + static_cast<int64_t>(k) * p, yn + static_cast<int64_t>(k + 1) * p,
                bias ? bias[k] : 0.f);
    // yn (K, P) += w (K, CKK) col (CKK, P)
    sgemm(Trans::N, Trans::N, g.k, p, ckk, 1.f, w, ckk, col, p, 1.f, yn, p);
  });
}

void Im2colConv::backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  const int ckk = g.c * g.kh * g.kw, p = g.oh * g.ow;
  const size_t col_size = static_cast<size_t>(ckk) * p;
  for_each_image(g, workspace(col_size * omp_get_max_threads()), col_size, [&](int n, float* col) {
    const float* dyn = dy + static_cast<int64_t>(n) * g.k * p;
    float* dxn = dx + static_cast<int64_t>(n) * g.c * g.h * g.w;
    // col (CKK, P) = w^T (CKK, K) dyn (K, P)
    sgemm(Trans::T, Trans::N, ckk, p, g.k, 1.f, w, ckk, dyn, p, 0.f, col, p);
    std::fill(dxn, dxn + static_cast<int64_t>(g.c) * g.h * g.w, 0.f);
    col2im_add(g, col, dxn);
  });
}

void Im2colConv::backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                                 float* db) {
  const int ckk = g.c * g.kh * g.kw, p = g.oh * g.ow;
  const size_t col_size = static_cast<size_t>(ckk) * p;
  const size_t acc_size = static_cast<size_t>(g.k) * ckk + g.k;  // dw_t (K, CKK), db_t (K)
  const int threads = omp_get_max_threads();
  float* cols = workspace((col_size + acc_size) * threads);
  float* accs = cols + col_size * threads;
  std::fill(accs, accs + acc_size * threads, 0.f);
#pragma omp parallel if (per_image_threads(g))
  {
    const int t = omp_get_thread_num();
    float* col = cols + col_size * t;
    float* dw_t = accs + acc_size * t;
    float* db_t = dw_t + static_cast<size_t>(g.k) * ckk;
#pragma omp for schedule(static)
    for (int n = 0; n < g.n; ++n) {
      const float* xn = x + static_cast<int64_t>(n) * g.c * g.h * g.w;
      const float* dyn = dy + static_cast<int64_t>(n) * g.k * p;
      im2col(g, xn, col);
      // dw_t (K, CKK) += dyn (K, P) col^T (P, CKK)
      sgemm(Trans::N, Trans::T, g.k, ckk, p, 1.f, dyn, p, col, p, 1.f, dw_t, ckk);
      for (int k = 0; k < g.k; ++k) {
        const float* r = dyn + static_cast<int64_t>(k) * p;
        float s = 0.f;
        for (int i = 0; i < p; ++i) s += r[i];
        db_t[k] += s;
      }
    }
  }
  // dw, db += sum of the per-thread accumulators (all zeroed, so idle threads add nothing)
  const int64_t total = static_cast<int64_t>(g.k) * ckk;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < total; ++i) {
    float s = 0.f;
    for (int t = 0; t < threads; ++t) s += accs[acc_size * t + i];
    dw[i] += s;
  }
  if (db)
    for (int k = 0; k < g.k; ++k) {
      float s = 0.f;
      for (int t = 0; t < threads; ++t) s += accs[acc_size * t + total + k];
      db[k] += s;
    }
}

}  // namespace owt
