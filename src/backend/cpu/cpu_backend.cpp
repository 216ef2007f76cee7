// CpuBackend: memory, dense helpers (oneDNN's gemms), elementwise ops, loss pieces and the SGD
// update. Elementwise maths comes from owt/backend/elementwise.h (shared with CUDA); this file
// only runs it in OpenMP loops. Convolution, pooling and LRN live in their own files.
#include "cpu_backend.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "cpu_conv.h"
#include "cpu_gemm.h"

namespace owt {

namespace {
// Below this many elements an OpenMP region costs more than it saves.
constexpr size_t kParallelMin = 1 << 14;
constexpr size_t kAlign = 64;
// oneDNN's backward-data writes dx in 16-channel blocks: for an RGB or grey input (a first
// layer) that is 5-16x padding, and im2col + sgemm measured 2-10x faster (conv_bench).
constexpr int kDnnlMinDataChannels = 8;

int64_t as_i64(size_t n) { return static_cast<int64_t>(n); }
}  // namespace

CpuBackend::CpuBackend(bool bf16)
    : bf16_(bf16),
      conv_(std::make_unique<DnnlConv>(bf16)),
      im2col_(std::make_unique<Im2colConv>()),
      bf16_gemm_(bf16 ? std::make_unique<DnnlBf16Gemm>() : nullptr) {}
CpuBackend::~CpuBackend() = default;

bool cpu_has_bf16() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bf16) == bf16;  // oneDNN's ISA values are nested bit sets
}

std::unique_ptr<Backend> make_cpu_backend(const std::string& precision) {
  if (precision == "bf16") {
    if (!cpu_has_bf16())
      throw Error("precision bf16 on the CPU needs AVX512_BF16, which oneDNN does not find on "
                  "this CPU; use precision tf32 (fp32 on the CPU) or a GPU");
    return std::make_unique<CpuBackend>(true);
  }
  if (precision != "tf32" && precision != "fp32-strict" && precision != "fp32")
    throw Error("unknown precision '" + precision + "' (expected tf32, fp32-strict or bf16)");
  return std::make_unique<CpuBackend>(false);
}

// ---- memory -------------------------------------------------------------------------------

std::shared_ptr<Buffer> CpuBackend::allocate(size_t bytes) {
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw Error(cat("cpu backend: out of host memory allocating ", bytes, " bytes"));
  auto buf = std::make_shared<Buffer>();
  buf->ptr = p;
  buf->bytes = bytes;
  buf->device = Device::CPU;
  buf->deleter = [](void* q) { std::free(q); };
  return buf;
}

void CpuBackend::copy(const void* src, void* dst, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void CpuBackend::to_host(const void* src, void* host_dst, size_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}
void CpuBackend::from_host(const void* host_src, void* dst, size_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}

void CpuBackend::fill(float* x, size_t n, float value) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < as_i64(n); ++i) x[i] = value;
}

void CpuBackend::scale(float* x, size_t n, float alpha) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < as_i64(n); ++i) x[i] *= alpha;
}

void CpuBackend::axpy(float alpha, const float* x, float* y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < as_i64(n); ++i) y[i] += alpha * x[i];
}

// ---- dense --------------------------------------------------------------------------------

void CpuBackend::gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // C = beta * C (BLAS leaves lda/ldb unchecked only for k >= 1)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[static_cast<int64_t>(i) * ldc + j] *= beta;
    return;
  }
  if (n == 1 || k == 1) {  // a sum or a broadcast (global_avgpool): bandwidth-bound, no bf16
    narrow_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (bf16_) {
    bf16_gemm_->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// y (rows, cols): y[r, :] += v (cols)
void CpuBackend::add_row_vector(float* y, const float* v, int rows, int cols) {
  size_t total = static_cast<size_t>(rows) * cols;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (int r = 0; r < rows; ++r) {
    float* yr = y + static_cast<int64_t>(r) * cols;
    for (int c = 0; c < cols; ++c) yr[c] += v[c];
  }
}

// x (rows, cols): out (cols) += sum_r x[r, :]. Threads own column blocks, so no reduction.
void CpuBackend::sum_rows(const float* x, float* out, int rows, int cols) {
  constexpr int kBlock = 256;
  int blocks = (cols + kBlock - 1) / kBlock;
  size_t total = static_cast<size_t>(rows) * cols;
#pragma omp parallel for schedule(static) if (total >= kParallelMin && blocks > 1)
  for (int b = 0; b < blocks; ++b) {
    int c0 = b * kBlock, c1 = std::min(cols, c0 + kBlock);
    float acc[kBlock] = {};
    for (int r = 0; r < rows; ++r) {
      const float* xr = x + static_cast<int64_t>(r) * cols;
      for (int c = c0; c < c1; ++c) acc[c - c0] += xr[c];
    }
    for (int c = c0; c < c1; ++c) out[c] += acc[c - c0];
  }
}

void CpuBackend::copy_columns(const float* src, int src_cols, int src_col0, float* dst,
                              int dst_cols, int dst_col0, int rows, int cols) {
  if (cols <= 0) return;
  size_t total = static_cast<size_t>(rows) * cols;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (int r = 0; r < rows; ++r)
    std::memcpy(dst + static_cast<int64_t>(r) * dst_cols + dst_col0,
                src + static_cast<int64_t>(r) * src_cols + src_col0, sizeof(float) * cols);
}

// ---- convolution: the engines chosen by tools/bench/conv_bench ----------------------------

void CpuBackend::conv2d_forward(const ConvGeom& g, const float* x, const float* w,
                                const float* bias, float* y) {
  conv_->forward(g, x, w, bias, y);
}
void CpuBackend::conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                                      float* dx) {
  if (g.c < kDnnlMinDataChannels)
    im2col_->backward_data(g, dy, w, dx);
  else
    conv_->backward_data(g, dy, w, dx);
}
void CpuBackend::conv2d_backward_filter(const ConvGeom& g, const float* x, const float* dy,
                                        float* dw, float* db) {
  conv_->backward_filter(g, x, dy, dw, db);
}

// ---- elementwise --------------------------------------------------------------------------

void CpuBackend::relu_forward(const float* x, float* y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < as_i64(n); ++i) y[i] = relu_forward_one(x[i]);
}

void CpuBackend::relu_backward(const float* y, const float* dy, float* dx, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < as_i64(n); ++i) dx[i] = relu_backward_one(y[i], dy[i]);
}

// x, y (rows, cols); Philox per element is costly enough to always go parallel.
void CpuBackend::dropout_apply(const DropoutKey& key, const float* x, float* y, int rows,
                               int cols) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<int64_t>(r) * cols;
    float* yr = y + static_cast<int64_t>(r) * cols;
    for (int c = 0; c < cols; ++c) yr[c] = xr[c] * dropout_scale(key, r, c);
  }
}

// ---- loss pieces (logits (rows, cols) over one class shard) --------------------------------

void CpuBackend::row_max(const float* logits, int rows, int cols, float* out) {
#pragma omp parallel for schedule(static) if (static_cast<size_t>(rows) * cols >= kParallelMin)
  for (int r = 0; r < rows; ++r) {
    const float* lr = logits + static_cast<int64_t>(r) * cols;
    float m = -std::numeric_limits<float>::infinity();
    for (int c = 0; c < cols; ++c) m = std::max(m, lr[c]);
    out[r] = m;
  }
}

void CpuBackend::row_sumexp(const float* logits, const float* row_max, int rows, int cols,
                            float* out) {
#pragma omp parallel for schedule(static) if (static_cast<size_t>(rows) * cols >= kParallelMin)
  for (int r = 0; r < rows; ++r) {
    const float* lr = logits + static_cast<int64_t>(r) * cols;
    float s = 0.f;
    for (int c = 0; c < cols; ++c) s += std::exp(lr[c] - row_max[r]);
    out[r] = s;
  }
}

void CpuBackend::pick_target(const float* logits, const int32_t* labels, int rows, int cols,
                             int col0, float* out) {
  for (int r = 0; r < rows; ++r) {
    int c = labels[r] - col0;
    out[r] = (c >= 0 && c < cols) ? logits[static_cast<int64_t>(r) * cols + c] : 0.f;
  }
}

void CpuBackend::row_sum(const float* logits, int rows, int cols, float* out) {
#pragma omp parallel for schedule(static) if (static_cast<size_t>(rows) * cols >= kParallelMin)
  for (int r = 0; r < rows; ++r) {
    const float* lr = logits + static_cast<int64_t>(r) * cols;
    float s = 0.f;
    for (int c = 0; c < cols; ++c) s += lr[c];
    out[r] = s;
  }
}

void CpuBackend::xent_backward(const float* logits, const float* row_max,
                               const float* row_sumexp, const int32_t* labels, int rows, int cols,
                               int col0, const XentGrad& g, float* dlogits) {
#pragma omp parallel for schedule(static) if (static_cast<size_t>(rows) * cols >= kParallelMin)
  for (int r = 0; r < rows; ++r) {
    const float* lr = logits + static_cast<int64_t>(r) * cols;
    float* dr = dlogits + static_cast<int64_t>(r) * cols;
    int target = labels[r] - col0;
    for (int c = 0; c < cols; ++c)
      dr[c] = xent_grad_one(lr[c], row_max[r], row_sumexp[r], c == target, g);
  }
}

// ---- optimizer ----------------------------------------------------------------------------

void CpuBackend::sgd_update(const SgdStep& step, float* w, const float* g, float* v, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < as_i64(n); ++i) sgd_one(step, &w[i], g[i], &v[i]);
}

}  // namespace owt
