// CudaBackend's elementwise ops, dense helpers, loss pieces, SGD update and the bf16/bias
// kernels the convolution uses. The maths is elementwise.h's OWT_HOST_DEVICE functions, the
// very source the CPU backend runs in its OpenMP loops; only the loops differ.
#include <cuda_bf16.h>

#include <algorithm>
#include <cfloat>

#include "cuda_backend.h"
#include "cuda_check.h"
#include "cuda_launch.cuh"
#include "owt/backend/elementwise.h"

namespace owt {

using cuda_detail::grid_for;
using cuda_detail::kThreads;

namespace {

// ---- elementwise ----------------------------------------------------------------------------

__global__ void fill_kernel(float* x, size_t n, float value) {
  OWT_GRID_LOOP(i, n) x[i] = value;
}
__global__ void scale_kernel(float* x, size_t n, float alpha) {
  OWT_GRID_LOOP(i, n) x[i] *= alpha;
}
__global__ void axpy_kernel(float alpha, const float* x, float* y, size_t n) {
  OWT_GRID_LOOP(i, n) y[i] += alpha * x[i];
}
__global__ void relu_forward_kernel(const float* x, float* y, size_t n) {
  OWT_GRID_LOOP(i, n) y[i] = relu_forward_one(x[i]);
}
__global__ void relu_backward_kernel(const float* y, const float* dy, float* dx, size_t n) {
  OWT_GRID_LOOP(i, n) dx[i] = relu_backward_one(y[i], dy[i]);
}
__global__ void dropout_kernel(DropoutKey key, const float* x, float* y, int cols, size_t n) {
  OWT_GRID_LOOP(i, n) {
    int64_t r = static_cast<int64_t>(i / cols), c = static_cast<int64_t>(i % cols);
    y[i] = x[i] * dropout_scale(key, r, c);
  }
}
__global__ void sgd_kernel(SgdStep step, float* w, const float* g, float* v, size_t n) {
  OWT_GRID_LOOP(i, n) sgd_one(step, &w[i], g[i], &v[i]);
}

// ---- dense helpers ---------------------------------------------------------------------------

__global__ void add_row_vector_kernel(float* y, const float* v, int cols, size_t n) {
  OWT_GRID_LOOP(i, n) y[i] += v[i % cols];
}

// out (cols) += sum_r x (rows, cols)[r, :]. Block (32, 8): 32 columns, 8 row phases.
__global__ void sum_rows_kernel(const float* x, float* out, int rows, int cols) {
  __shared__ float part[8][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  float s = 0.f;
  if (c < cols)
    for (int r = threadIdx.y; r < rows; r += 8) s += x[static_cast<int64_t>(r) * cols + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.f;
    for (int j = 0; j < 8; ++j) t += part[j][threadIdx.x];
    out[c] += t;
  }
}

// c (m, n, stride ldc) *= beta
__global__ void scale_matrix_kernel(float* c, int n, int ldc, float beta, size_t total) {
  OWT_GRID_LOOP(i, total) {
    size_t r = i / n, j = i % n;
    c[r * ldc + j] *= beta;
  }
}

// ---- loss pieces: one warp per row ------------------------------------------------------------

__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

constexpr int kRowsPerBlock = kThreads / 32;

__global__ void row_max_kernel(const float* logits, int rows, int cols, float* out) {
  int r = blockIdx.x * kRowsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* lr = logits + static_cast<int64_t>(r) * cols;
  float m = -INFINITY;
  for (int c = lane; c < cols; c += 32) m = fmaxf(m, lr[c]);
  m = warp_max(m);
  if (lane == 0) out[r] = m;
}

__global__ void row_sumexp_kernel(const float* logits, const float* row_max, int rows, int cols,
                                  float* out) {
  int r = blockIdx.x * kRowsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* lr = logits + static_cast<int64_t>(r) * cols;
  const float m = row_max[r];
  float s = 0.f;
  for (int c = lane; c < cols; c += 32) s += expf(lr[c] - m);
  s = warp_sum(s);
  if (lane == 0) out[r] = s;
}

__global__ void pick_target_kernel(const float* logits, const int32_t* labels, int rows, int cols,
                                   int col0, float* out) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  int c = labels[r] - col0;
  out[r] = (c >= 0 && c < cols) ? logits[static_cast<int64_t>(r) * cols + c] : 0.f;
}

__global__ void row_sum_kernel(const float* logits, int rows, int cols, float* out) {
  int r = blockIdx.x * kRowsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* lr = logits + static_cast<int64_t>(r) * cols;
  float s = 0.f;
  for (int c = lane; c < cols; c += 32) s += lr[c];
  s = warp_sum(s);
  if (lane == 0) out[r] = s;
}

__global__ void xent_backward_kernel(const float* logits, const float* row_max,
                                     const float* row_sumexp, const int32_t* labels, int cols,
                                     int col0, XentGrad g, float* dlogits, size_t n) {
  OWT_GRID_LOOP(i, n) {
    int r = static_cast<int>(i / cols), c = static_cast<int>(i % cols);
    dlogits[i] = xent_grad_one(logits[i], row_max[r], row_sumexp[r], c == labels[r] - col0, g);
  }
}

// ---- convolution helpers -------------------------------------------------------------------

__global__ void f32_to_bf16_kernel(const float* in, __nv_bfloat16* out, size_t n) {
  OWT_GRID_LOOP(i, n) out[i] = __float2bfloat16_rn(in[i]);
}
__global__ void bf16_to_f32_bias_kernel(const __nv_bfloat16* in, const float* bias, float* out,
                                        int k, int64_t p, size_t n) {
  OWT_GRID_LOOP(i, n) {
    float v = __bfloat162float(in[i]);
    out[i] = bias ? v + bias[(i / p) % k] : v;
  }
}
__global__ void bf16_accumulate_kernel(const __nv_bfloat16* in, float* out, size_t n) {
  OWT_GRID_LOOP(i, n) out[i] += __bfloat162float(in[i]);
}
__global__ void add_channel_bias_kernel(float* y, const float* bias, int k, int64_t p, size_t n) {
  OWT_GRID_LOOP(i, n) y[i] += bias[(i / p) % k];
}
// db[k] += sum over images and positions of dy (N, K, P), in two deterministic passes. Pass 1:
// grid (K, S); block (k, s) sums part s of channel k's N*P elements (a contiguous range of
// the flattened (image, position) index, so each warp reads consecutive addresses) into
// parts[k * S + s]. Pass 2: one warp per channel adds its S parts in a fixed order.
__device__ float block_sum(float s) {
  __shared__ float part[kThreads / 32];
  s = warp_sum(s);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
  __syncthreads();
  float t = 0.f;
  if (threadIdx.x == 0)
    for (int j = 0; j < kThreads / 32; ++j) t += part[j];
  return t;  // meaningful in thread 0
}

__global__ void channel_parts_kernel(const float* dy, float* parts, int k, int64_t p,
                                     int64_t per_part, int64_t total) {
  const int ch = blockIdx.x, part = blockIdx.y;
  const int64_t begin = part * per_part, end = min(total, begin + per_part);
  float s = 0.f;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const int64_t img = j / p, pos = j - img * p;
    s += dy[(img * k + ch) * p + pos];
  }
  s = block_sum(s);
  if (threadIdx.x == 0) parts[static_cast<int64_t>(ch) * gridDim.y + part] = s;
}

__global__ void channel_finish_kernel(const float* parts, int num_parts, float* db, int k) {
  const int ch = blockIdx.x * kRowsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (ch >= k) return;
  float s = 0.f;
  for (int j = lane; j < num_parts; j += 32) s += parts[static_cast<int64_t>(ch) * num_parts + j];
  s = warp_sum(s);
  if (lane == 0) db[ch] += s;
}

}  // namespace

// ---- CudaBackend members --------------------------------------------------------------------

void CudaBackend::fill(float* x, size_t n, float value) {
  if (n == 0) return;
  wrote(x, n * sizeof(float));
  fill_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, n, value);
  OWT_CUDA_CHECK_LAUNCH(fill_kernel);
}

void CudaBackend::scale(float* x, size_t n, float alpha) {
  if (n == 0) return;
  wrote(x, n * sizeof(float));
  scale_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, n, alpha);
  OWT_CUDA_CHECK_LAUNCH(scale_kernel);
}

void CudaBackend::axpy(float alpha, const float* x, float* y, size_t n) {
  if (n == 0) return;
  wrote(y, n * sizeof(float));
  axpy_kernel<<<grid_for(n), kThreads, 0, stream()>>>(alpha, x, y, n);
  OWT_CUDA_CHECK_LAUNCH(axpy_kernel);
}

void CudaBackend::add_row_vector(float* y, const float* v, int rows, int cols) {
  size_t n = static_cast<size_t>(rows) * cols;
  if (rows <= 0 || cols <= 0) return;
  wrote(y, n * sizeof(float));
  add_row_vector_kernel<<<grid_for(n), kThreads, 0, stream()>>>(y, v, cols, n);
  OWT_CUDA_CHECK_LAUNCH(add_row_vector_kernel);
}

void CudaBackend::sum_rows(const float* x, float* out, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  wrote(out, static_cast<size_t>(cols) * sizeof(float));
  sum_rows_kernel<<<(cols + 31) / 32, dim3(32, 8), 0, stream()>>>(x, out, rows, cols);
  OWT_CUDA_CHECK_LAUNCH(sum_rows_kernel);
}

void CudaBackend::copy_columns(const float* src, int src_cols, int src_col0, float* dst,
                               int dst_cols, int dst_col0, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  wrote(dst + dst_col0, (static_cast<size_t>(rows - 1) * dst_cols + cols) * sizeof(float));
  OWT_CUDA_CHECK(cudaMemcpy2DAsync(dst + dst_col0, sizeof(float) * dst_cols, src + src_col0,
                                   sizeof(float) * src_cols, sizeof(float) * cols, rows,
                                   cudaMemcpyDeviceToDevice, stream()));
}

void CudaBackend::relu_forward(const float* x, float* y, size_t n) {
  if (n == 0) return;
  wrote(y, n * sizeof(float));
  relu_forward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, y, n);
  OWT_CUDA_CHECK_LAUNCH(relu_forward_kernel);
}

void CudaBackend::relu_backward(const float* y, const float* dy, float* dx, size_t n) {
  if (n == 0) return;
  wrote(dx, n * sizeof(float));
  relu_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(y, dy, dx, n);
  OWT_CUDA_CHECK_LAUNCH(relu_backward_kernel);
}

void CudaBackend::dropout_apply(const DropoutKey& key, const float* x, float* y, int rows,
                                int cols) {
  size_t n = static_cast<size_t>(rows) * cols;
  if (rows <= 0 || cols <= 0) return;
  wrote(y, n * sizeof(float));
  dropout_kernel<<<grid_for(n), kThreads, 0, stream()>>>(key, x, y, cols, n);
  OWT_CUDA_CHECK_LAUNCH(dropout_kernel);
}

void CudaBackend::row_max(const float* logits, int rows, int cols, float* out) {
  if (rows <= 0) return;
  wrote(out, static_cast<size_t>(rows) * sizeof(float));
  row_max_kernel<<<(rows + kRowsPerBlock - 1) / kRowsPerBlock, kThreads, 0, stream()>>>(
      logits, rows, cols, out);
  OWT_CUDA_CHECK_LAUNCH(row_max_kernel);
}

void CudaBackend::row_sumexp(const float* logits, const float* row_max, int rows, int cols,
                             float* out) {
  if (rows <= 0) return;
  wrote(out, static_cast<size_t>(rows) * sizeof(float));
  row_sumexp_kernel<<<(rows + kRowsPerBlock - 1) / kRowsPerBlock, kThreads, 0, stream()>>>(
      logits, row_max, rows, cols, out);
  OWT_CUDA_CHECK_LAUNCH(row_sumexp_kernel);
}

void CudaBackend::pick_target(const float* logits, const int32_t* labels, int rows, int cols,
                              int col0, float* out) {
  if (rows <= 0) return;
  wrote(out, static_cast<size_t>(rows) * sizeof(float));
  pick_target_kernel<<<(rows + kThreads - 1) / kThreads, kThreads, 0, stream()>>>(
      logits, labels, rows, cols, col0, out);
  OWT_CUDA_CHECK_LAUNCH(pick_target_kernel);
}

void CudaBackend::row_sum(const float* logits, int rows, int cols, float* out) {
  if (rows <= 0) return;
  wrote(out, static_cast<size_t>(rows) * sizeof(float));
  row_sum_kernel<<<(rows + kRowsPerBlock - 1) / kRowsPerBlock, kThreads, 0, stream()>>>(
      logits, rows, cols, out);
  OWT_CUDA_CHECK_LAUNCH(row_sum_kernel);
}

void CudaBackend::xent_backward(const float* logits, const float* row_max,
                                const float* row_sumexp, const int32_t* labels, int rows,
                                int cols, int col0, const XentGrad& g, float* dlogits) {
  size_t n = static_cast<size_t>(rows) * cols;
  if (rows <= 0 || cols <= 0) return;
  wrote(dlogits, n * sizeof(float));
  xent_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(logits, row_max, row_sumexp, labels,
                                                              cols, col0, g, dlogits, n);
  OWT_CUDA_CHECK_LAUNCH(xent_backward_kernel);
}

void CudaBackend::sgd_update(const SgdStep& step, float* w, const float* g, float* v, size_t n) {
  if (n == 0) return;
  wrote(w, n * sizeof(float));
  wrote(v, n * sizeof(float));
  sgd_kernel<<<grid_for(n), kThreads, 0, stream()>>>(step, w, g, v, n);
  OWT_CUDA_CHECK_LAUNCH(sgd_kernel);
}

// ---- launchers for the .cpp files -------------------------------------------------------------

void launch_f32_to_bf16(const float* in, void* out, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, static_cast<__nv_bfloat16*>(out), n);
  OWT_CUDA_CHECK_LAUNCH(f32_to_bf16_kernel);
}

void launch_bf16_to_f32_bias(const void* yb, const float* bias, float* y, int n, int k, int64_t p,
                             cudaStream_t stream) {
  size_t total = static_cast<size_t>(n) * k * p;
  if (total == 0) return;
  bf16_to_f32_bias_kernel<<<grid_for(total), kThreads, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(yb), bias, y, k, p, total);
  OWT_CUDA_CHECK_LAUNCH(bf16_to_f32_bias_kernel);
}

void launch_bf16_accumulate(const void* in, float* out, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  bf16_accumulate_kernel<<<grid_for(n), kThreads, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(in), out, n);
  OWT_CUDA_CHECK_LAUNCH(bf16_accumulate_kernel);
}

void launch_add_channel_bias(float* y, const float* bias, int n, int k, int64_t p,
                             cudaStream_t stream) {
  size_t total = static_cast<size_t>(n) * k * p;
  if (total == 0) return;
  add_channel_bias_kernel<<<grid_for(total), kThreads, 0, stream>>>(y, bias, k, p, total);
  OWT_CUDA_CHECK_LAUNCH(add_channel_bias_kernel);
}

// Enough parts that the grid fills the GPU (AlexNet conv1 at batch 128: 64 channels of
// 387,200 elements -> 64 x 95 blocks), each part at least 4096 elements so pass 1 stays
// bandwidth-bound; at most 256 parts so pass 2 is one short warp loop.
int channel_sums_parts(int n, int64_t p) {
  const int64_t total = int64_t{n} * p;
  return static_cast<int>(std::clamp<int64_t>((total + 4095) / 4096, 1, 256));
}

void launch_channel_sums(const float* dy, float* db, int n, int k, int64_t p, float* parts,
                         cudaStream_t stream) {
  if (k <= 0) return;
  const int64_t total = int64_t{n} * p;
  const int num_parts = channel_sums_parts(n, p);
  const int64_t per_part = (total + num_parts - 1) / num_parts;
  channel_parts_kernel<<<dim3(k, num_parts), kThreads, 0, stream>>>(dy, parts, k, p, per_part,
                                                                    total);
  OWT_CUDA_CHECK_LAUNCH(channel_parts_kernel);
  channel_finish_kernel<<<(k + kRowsPerBlock - 1) / kRowsPerBlock, kThreads, 0, stream>>>(
      parts, num_parts, db, k);
  OWT_CUDA_CHECK_LAUNCH(channel_finish_kernel);
}

void launch_scale_matrix(float* c, int m, int n, int ldc, float beta, cudaStream_t stream) {
  size_t total = static_cast<size_t>(m) * n;
  if (total == 0) return;
  scale_matrix_kernel<<<grid_for(total), kThreads, 0, stream>>>(c, n, ldc, beta, total);
  OWT_CUDA_CHECK_LAUNCH(scale_matrix_kernel);
}

}  // namespace owt
