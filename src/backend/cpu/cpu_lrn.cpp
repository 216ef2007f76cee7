// CpuBackend cross-channel local response normalisation (AlexNet), forward and backward, as
// PyTorch's nn.LocalResponseNorm: window(c) = [c - size/2, c + (size-1)/2] clipped to the
// channels, scale = k + alpha/size * sum_window x^2, y = x * scale^-beta. Parallel over planes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_backend.h"

namespace owt {

namespace {
// Small problems run serially: an OpenMP region costs more than it saves there.
bool worth_threads(const LrnGeom& g) {
  return static_cast<int64_t>(g.n) * g.c * g.h * g.w * g.size >= (1 << 15);
}

// out[i] = a[i] * s[i]^-beta (+ b[i] when b is given). AlexNet's beta = 0.75 is written as
// 1 / sqrt(s sqrt(s)), which vectorises; std::pow does not and dominated the op's time.
void times_pow_neg_beta(const float* a, const float* s, float beta, int64_t n, float* out) {
  if (beta == 0.75f) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] / std::sqrt(s[i] * std::sqrt(s[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] * std::pow(s[i], -beta);
  }
}
}  // namespace

// x, scale, y (N, C, H, W)
void CpuBackend::lrn_forward(const LrnGeom& g, const float* x, float* scale, float* y) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w;
  const float a = g.alpha / g.size;
#pragma omp parallel for collapse(2) schedule(static) if (worth_threads(g))
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < g.c; ++c) {
      const int64_t plane = (static_cast<int64_t>(n) * g.c + c) * hw;
      float* sp = scale + plane;
      std::fill(sp, sp + hw, 0.f);
      int c0 = std::max(0, c - g.size / 2), c1 = std::min(g.c - 1, c + (g.size - 1) / 2);
      for (int cc = c0; cc <= c1; ++cc) {
        const float* xc = x + (static_cast<int64_t>(n) * g.c + cc) * hw;
        for (int64_t i = 0; i < hw; ++i) sp[i] += xc[i] * xc[i];
      }
      for (int64_t i = 0; i < hw; ++i) sp[i] = g.k + a * sp[i];
      times_pow_neg_beta(x + plane, sp, g.beta, hw, y + plane);
    }
}

// dx[c] = dy[c] scale[c]^-beta
//         - 2 alpha beta / size * x[c] * sum_{c' : c in window(c')} dy[c'] y[c'] / scale[c']
// where c in window(c') <=> c' in [c - (size-1)/2, c + size/2].
void CpuBackend::lrn_backward(const LrnGeom& g, const float* x, const float* y,
                              const float* scale, const float* dy, float* dx) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w;
  const float coef = 2.f * g.alpha * g.beta / g.size;
#pragma omp parallel if (worth_threads(g))
  {
    std::vector<float> acc(hw);
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < g.n; ++n)
      for (int c = 0; c < g.c; ++c) {
        std::fill(acc.begin(), acc.end(), 0.f);
        int c0 = std::max(0, c - (g.size - 1) / 2), c1 = std::min(g.c - 1, c + g.size / 2);
        for (int cc = c0; cc <= c1; ++cc) {
          const int64_t off = (static_cast<int64_t>(n) * g.c + cc) * hw;
          const float *dyc = dy + off, *yc = y + off, *sc = scale + off;
          for (int64_t i = 0; i < hw; ++i) acc[i] += dyc[i] * yc[i] / sc[i];
        }
        const int64_t plane = (static_cast<int64_t>(n) * g.c + c) * hw;
        const float *xp = x + plane, *sp = scale + plane, *dyp = dy + plane;
        float* dxp = dx + plane;
        times_pow_neg_beta(dyp, sp, g.beta, hw, dxp);
        for (int64_t i = 0; i < hw; ++i) dxp[i] -= coef * xp[i] * acc[i];
      }
  }
}

}  // namespace owt
