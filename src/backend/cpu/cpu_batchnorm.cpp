// CpuBackend batch normalisation (backend.h, "batch normalisation"): per-channel sums, the
// training and evaluation forward, and the two backward halves. x, y, dy, dx are (N, C, HW).
// Sums are accumulated in double, one channel per OpenMP iteration, each channel in a fixed
// order: the results do not depend on the thread count. Sum vectors are (2C) blocks:
// [sum over channel 0..C-1 | second sum over channel 0..C-1].
#include <algorithm>
#include <cmath>

#include "cpu_backend.h"

namespace owt {

namespace {
// Small problems run serially: an OpenMP region costs more than it saves there.
bool worth_threads(const BatchNormGeom& g) {
  return static_cast<int64_t>(g.n) * g.c * g.hw >= (1 << 15);
}

// Element (n, c, 0) of a (N, C, HW) tensor.
int64_t plane(const BatchNormGeom& g, int n, int c) {
  return (static_cast<int64_t>(n) * g.c + c) * g.hw;
}

// Biased variance from the sums over `count` values, never negative (rounding of sum x^2).
double variance(double sum, double sum_sq, double count) {
  const double mean = sum / count;
  return std::max(0.0, sum_sq / count - mean * mean);
}
}  // namespace

// sums (2C) = [sum x | sum x^2]
void CpuBackend::batchnorm_sums(const BatchNormGeom& g, const float* x, float* sums) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int c = 0; c < g.c; ++c) {
    double s = 0, s2 = 0;
    for (int n = 0; n < g.n; ++n) {
      const float* xp = x + plane(g, n, c);
      for (int64_t i = 0; i < g.hw; ++i) {
        const double v = xp[i];
        s += v;
        s2 += v * v;
      }
    }
    sums[c] = static_cast<float>(s);
    sums[g.c + c] = static_cast<float>(s2);
  }
}

// gamma, beta, running_mean, running_var, save_mean, save_invstd (C)
void CpuBackend::batchnorm_forward_train(const BatchNormGeom& g, const float* x,
                                         const float* sums, int64_t count, const float* gamma,
                                         const float* beta, float momentum, float* running_mean,
                                         float* running_var, float* save_mean,
                                         float* save_invstd, float* y) {
  const double m = momentum, cnt = static_cast<double>(count);
  const double unbias = count > 1 ? cnt / (cnt - 1) : 1.0;
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int c = 0; c < g.c; ++c) {
    const double mean = sums[c] / cnt, var = variance(sums[c], sums[g.c + c], cnt);
    const float mean_f = static_cast<float>(mean);
    const float invstd = static_cast<float>(1.0 / std::sqrt(var + g.eps));
    save_mean[c] = mean_f;
    save_invstd[c] = invstd;
    running_mean[c] = static_cast<float>((1 - m) * running_mean[c] + m * mean);
    running_var[c] = static_cast<float>((1 - m) * running_var[c] + m * var * unbias);
    const float scale = invstd * gamma[c], shift = beta[c];
    for (int n = 0; n < g.n; ++n) {
      const float* xp = x + plane(g, n, c);
      float* yp = y + plane(g, n, c);
      for (int64_t i = 0; i < g.hw; ++i) yp[i] = (xp[i] - mean_f) * scale + shift;
    }
  }
}

void CpuBackend::batchnorm_forward_eval(const BatchNormGeom& g, const float* x,
                                        const float* gamma, const float* beta,
                                        const float* running_mean, const float* running_var,
                                        float* y) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int c = 0; c < g.c; ++c) {
    const double var = running_var[c];
    const float invstd = static_cast<float>(1.0 / std::sqrt(var + g.eps));
    const float mean = running_mean[c], scale = invstd * gamma[c], shift = beta[c];
    for (int n = 0; n < g.n; ++n) {
      const float* xp = x + plane(g, n, c);
      float* yp = y + plane(g, n, c);
      for (int64_t i = 0; i < g.hw; ++i) yp[i] = (xp[i] - mean) * scale + shift;
    }
  }
}

// dsums (2C) = [sum dy | sum dy * xhat], xhat = (x - save_mean) * save_invstd
void CpuBackend::batchnorm_backward_sums(const BatchNormGeom& g, const float* x, const float* dy,
                                         const float* save_mean, const float* save_invstd,
                                         float* dsums) {
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int c = 0; c < g.c; ++c) {
    const double mean = save_mean[c];
    double s = 0, sx = 0;  // sum dy, sum dy * (x - mean)
    for (int n = 0; n < g.n; ++n) {
      const float *xp = x + plane(g, n, c), *dyp = dy + plane(g, n, c);
      for (int64_t i = 0; i < g.hw; ++i) {
        s += dyp[i];
        sx += dyp[i] * (xp[i] - mean);
      }
    }
    dsums[c] = static_cast<float>(s);
    dsums[g.c + c] = static_cast<float>(sx * save_invstd[c]);
  }
}

// dx = gamma invstd (dy - sum dy / count - xhat sum(dy xhat) / count)
void CpuBackend::batchnorm_backward_data(const BatchNormGeom& g, const float* x, const float* dy,
                                         const float* dsums, int64_t count, const float* gamma,
                                         const float* save_mean, const float* save_invstd,
                                         float* dx) {
  const double cnt = static_cast<double>(count);
#pragma omp parallel for schedule(static) if (worth_threads(g))
  for (int c = 0; c < g.c; ++c) {
    const float mean = save_mean[c], invstd = save_invstd[c];
    const float scale = gamma[c] * invstd;
    const float mean_dy = static_cast<float>(dsums[c] / cnt);
    const float mean_dy_xhat = static_cast<float>(dsums[g.c + c] / cnt);
    for (int n = 0; n < g.n; ++n) {
      const float *xp = x + plane(g, n, c), *dyp = dy + plane(g, n, c);
      float* dxp = dx + plane(g, n, c);
      for (int64_t i = 0; i < g.hw; ++i) {
        const float xhat = (xp[i] - mean) * invstd;
        dxp[i] = scale * (dyp[i] - mean_dy - xhat * mean_dy_xhat);
      }
    }
  }
}

}  // namespace owt
