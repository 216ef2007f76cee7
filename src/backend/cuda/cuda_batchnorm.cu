// CudaBackend batch normalisation (backend.h, "batch normalisation"): own kernels over x
// (N, C, HW) with the CPU backend's maths and order of operations (cpu_batchnorm.cpp), sum
// vectors (2C) as [first sum, channels 0..C-1 | second sum, channels 0..C-1]. Per-channel sums
// are deterministic: each block sums a fixed part of one channel in double, then one warp per
// output adds the parts in a fixed order (no atomics: the same bits run to run). Per-channel
// coefficients (mean, invstd, running statistics) are computed on the device from the sums.
#include <cmath>
#include <memory>

#include "cuda_backend.h"
#include "cuda_check.h"
#include "cuda_launch.cuh"

namespace owt {

using cuda_detail::grid_for;
using cuda_detail::kThreads;

namespace {

constexpr int kWarps = kThreads / 32;

__device__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The block's sums of a and b, meaningful in thread 0: warps by shuffles, then the warps' sums
// in warp order.
__device__ void block_sum2(double* a, double* b) {
  __shared__ double part[2][kWarps];
  double sa = warp_sum(*a), sb = warp_sum(*b);
  if (threadIdx.x % 32 == 0) {
    part[0][threadIdx.x / 32] = sa;
    part[1][threadIdx.x / 32] = sb;
  }
  __syncthreads();
  *a = 0, *b = 0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarps; ++w) {
      *a += part[0][w];
      *b += part[1][w];
    }
}

// Pass 1 of a per-channel pair of sums. Grid (C, S): block (c, s) sums part s of channel c's
// N*HW values (a contiguous range of the flattened (image, position) index, so a warp reads
// consecutive addresses when HW > 1) into parts (2, C, S):
//   kBackward false: [sum x, sum x^2];
//   kBackward true:  [sum dy, invstd * sum dy (x - mean)] (= sum dy xhat, in the CPU's order).
template <bool kBackward>
__global__ void moments_parts_kernel(BatchNormGeom g, const float* x, const float* dy,
                                     const float* mean, const float* invstd, double* parts,
                                     int64_t per_part) {
  const int c = blockIdx.x, part = blockIdx.y, num_parts = gridDim.y;
  const int64_t total = static_cast<int64_t>(g.n) * g.hw;
  const int64_t begin = part * per_part, end = min(total, begin + per_part);
  const double m = kBackward ? mean[c] : 0.0;
  double a = 0, b = 0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const int64_t img = j / g.hw, pos = j - img * g.hw;
    const int64_t i = (img * g.c + c) * g.hw + pos;
    if (kBackward) {
      a += dy[i];
      b += dy[i] * (x[i] - m);
    } else {
      a += x[i];
      b += static_cast<double>(x[i]) * x[i];
    }
  }
  block_sum2(&a, &b);
  if (threadIdx.x == 0) {
    if (kBackward) b *= invstd[c];
    parts[static_cast<int64_t>(c) * num_parts + part] = a;
    parts[(static_cast<int64_t>(g.c) + c) * num_parts + part] = b;
  }
}

// Pass 2: out (rows) = the sum of parts (rows, S) in a fixed order, one warp per row.
__global__ void parts_finish_kernel(const double* parts, int num_parts, float* out, int rows) {
  const int r = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  double s = 0;
  for (int j = lane; j < num_parts; j += 32) s += parts[static_cast<int64_t>(r) * num_parts + j];
  s = warp_sum(s);
  if (lane == 0) out[r] = static_cast<float>(s);
}

// Per channel, from sums (2C) over `count` values: save_mean, save_invstd (C), and the running
// statistics moved towards (mean, unbiased var) by `momentum`.
__global__ void train_coefficients_kernel(int channels, const float* sums, double count,
                                          float eps, float momentum, float* running_mean,
                                          float* running_var, float* save_mean,
                                          float* save_invstd) {
  const double m = momentum, unbias = count > 1 ? count / (count - 1) : 1.0;
  OWT_GRID_LOOP(c, static_cast<size_t>(channels)) {
    const double mean = sums[c] / count;
    const double var = fmax(sums[channels + c] / count - mean * mean, 0.0);  // biased, >= 0
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = static_cast<float>(1.0 / sqrt(var + eps));
    running_mean[c] = static_cast<float>((1 - m) * running_mean[c] + m * mean);
    running_var[c] = static_cast<float>((1 - m) * running_var[c] + m * var * unbias);
  }
}

// invstd (C) = 1 / sqrt(running_var + eps)
__global__ void eval_invstd_kernel(int channels, const float* running_var, float eps,
                                   float* invstd) {
  OWT_GRID_LOOP(c, static_cast<size_t>(channels)) {
    invstd[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
  }
}

// y (N, C, HW) = (x - mean[c]) * (invstd[c] * gamma[c]) + beta[c]
__global__ void normalize_kernel(BatchNormGeom g, const float* x, const float* mean,
                                 const float* invstd, const float* gamma, const float* beta,
                                 float* y, size_t n) {
  OWT_GRID_LOOP(i, n) {
    const int c = static_cast<int>(i / g.hw % g.c);
    y[i] = (x[i] - mean[c]) * (invstd[c] * gamma[c]) + beta[c];
  }
}

// dx (N, C, HW) = gamma invstd (dy - sum dy / count - xhat sum(dy xhat) / count)
__global__ void backward_data_kernel(BatchNormGeom g, const float* x, const float* dy,
                                     const float* dsums, double count, const float* gamma,
                                     const float* mean, const float* invstd, float* dx,
                                     size_t n) {
  OWT_GRID_LOOP(i, n) {
    const int c = static_cast<int>(i / g.hw % g.c);
    const float xhat = (x[i] - mean[c]) * invstd[c];
    const float mean_dy = static_cast<float>(dsums[c] / count);
    const float mean_dy_xhat = static_cast<float>(dsums[g.c + c] / count);
    dx[i] = gamma[c] * invstd[c] * (dy[i] - mean_dy - xhat * mean_dy_xhat);
  }
}

size_t elements(const BatchNormGeom& g) { return static_cast<size_t>(g.n) * g.c * g.hw; }

// out (2C): the two per-channel sums of moments_parts_kernel<kBackward>, through double parts
// in scratch from the backend's allocator (freed at return: later users queue behind on the
// stream).
template <bool kBackward>
void channel_moments(CudaBackend& b, const BatchNormGeom& g, const float* x, const float* dy,
                     const float* mean, const float* invstd, float* out) {
  const int num_parts = channel_sums_parts(g.n, g.hw);
  const int64_t total = static_cast<int64_t>(g.n) * g.hw;
  const int64_t per_part = (total + num_parts - 1) / num_parts;
  const int rows = 2 * g.c;
  std::shared_ptr<Buffer> parts =
      b.allocate(static_cast<size_t>(rows) * num_parts * sizeof(double));
  double* p = static_cast<double*>(parts->ptr);
  moments_parts_kernel<kBackward><<<dim3(g.c, num_parts), kThreads, 0, b.stream()>>>(
      g, x, dy, mean, invstd, p, per_part);
  OWT_CUDA_CHECK_LAUNCH(moments_parts_kernel);
  parts_finish_kernel<<<(rows + kWarps - 1) / kWarps, kThreads, 0, b.stream()>>>(p, num_parts,
                                                                                out, rows);
  OWT_CUDA_CHECK_LAUNCH(parts_finish_kernel);
}

}  // namespace

void CudaBackend::batchnorm_sums(const BatchNormGeom& g, const float* x, float* sums) {
  if (g.c == 0) return;
  wrote(sums, 2 * static_cast<size_t>(g.c) * sizeof(float));
  channel_moments<false>(*this, g, x, nullptr, nullptr, nullptr, sums);  // zeros when N = 0
}

void CudaBackend::batchnorm_forward_train(const BatchNormGeom& g, const float* x,
                                          const float* sums, int64_t count, const float* gamma,
                                          const float* beta, float momentum,
                                          float* running_mean, float* running_var,
                                          float* save_mean, float* save_invstd, float* y) {
  if (g.c == 0) return;
  const size_t per_channel = static_cast<size_t>(g.c) * sizeof(float);
  wrote(running_mean, per_channel);
  wrote(running_var, per_channel);
  wrote(save_mean, per_channel);
  wrote(save_invstd, per_channel);
  // The running statistics move on every worker, also one with no rows of its own.
  train_coefficients_kernel<<<grid_for(g.c), kThreads, 0, stream()>>>(
      g.c, sums, static_cast<double>(count), g.eps, momentum, running_mean, running_var,
      save_mean, save_invstd);
  OWT_CUDA_CHECK_LAUNCH(train_coefficients_kernel);
  const size_t n = elements(g);
  if (n == 0) return;
  wrote(y, n * sizeof(float));
  normalize_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, x, save_mean, save_invstd, gamma,
                                                           beta, y, n);
  OWT_CUDA_CHECK_LAUNCH(normalize_kernel);
}

void CudaBackend::batchnorm_forward_eval(const BatchNormGeom& g, const float* x,
                                         const float* gamma, const float* beta,
                                         const float* running_mean, const float* running_var,
                                         float* y) {
  const size_t n = elements(g);
  if (n == 0) return;
  std::shared_ptr<Buffer> invstd = allocate(static_cast<size_t>(g.c) * sizeof(float));  // (C)
  float* is = static_cast<float*>(invstd->ptr);
  eval_invstd_kernel<<<grid_for(g.c), kThreads, 0, stream()>>>(g.c, running_var, g.eps, is);
  OWT_CUDA_CHECK_LAUNCH(eval_invstd_kernel);
  wrote(y, n * sizeof(float));
  normalize_kernel<<<grid_for(n), kThreads, 0, stream()>>>(g, x, running_mean, is, gamma, beta,
                                                           y, n);
  OWT_CUDA_CHECK_LAUNCH(normalize_kernel);
}

void CudaBackend::batchnorm_backward_sums(const BatchNormGeom& g, const float* x,
                                          const float* dy, const float* save_mean,
                                          const float* save_invstd, float* dsums) {
  if (g.c == 0) return;
  wrote(dsums, 2 * static_cast<size_t>(g.c) * sizeof(float));
  channel_moments<true>(*this, g, x, dy, save_mean, save_invstd, dsums);  // zeros when N = 0
}

void CudaBackend::batchnorm_backward_data(const BatchNormGeom& g, const float* x,
                                          const float* dy, const float* dsums, int64_t count,
                                          const float* gamma, const float* save_mean,
                                          const float* save_invstd, float* dx) {
  const size_t n = elements(g);
  if (n == 0) return;
  wrote(dx, n * sizeof(float));
  backward_data_kernel<<<grid_for(n), kThreads, 0, stream()>>>(
      g, x, dy, dsums, static_cast<double>(count), gamma, save_mean, save_invstd, dx, n);
  OWT_CUDA_CHECK_LAUNCH(backward_data_kernel);
}

}  // namespace owt
