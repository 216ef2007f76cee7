// The CPU backend's matrix products (cpu_gemm.cpp): oneDNN's fp32 sgemm, narrow products in
// double, and the bf16 gemm of `precision: bf16`. Row-major, C (m, n) = alpha op(A) op(B) + beta C.
#pragma once
#include <memory>

#include "owt/backend/backend.h"

namespace owt {

// oneDNN's sgemm (JIT-compiled for the CPU it runs on, threaded with OpenMP; sequential when
// called inside a parallel region). k >= 1. Throws Error on a bad argument.
void sgemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);

// n == 1 (matrix-vector) or k == 1 (outer product): each element summed in double and rounded
// once. These are bandwidth-bound (global_avgpool's means and their backward), so the wider sum
// costs nothing, and a batchnorm after the pool, which amplifies its input's rounding by about
// (mean/std)^2, sees correctly rounded means. Any k >= 1, n >= 1.
void narrow_gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);

// A and B rounded to bfloat16 (round to nearest even), C accumulated and written in fp32, like
// cuBLAS's bf16 GEMM on the GPU. k >= 1. Plans are cached per shape.
class DnnlBf16Gemm {
 public:
  DnnlBf16Gemm();
  ~DnnlBf16Gemm();
  void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc);

 private:
  struct Impl;  // engine, stream and (reorder, reorder, matmul) plans cached per shape
  struct Plan;
  std::unique_ptr<Impl> impl_;
};

}  // namespace owt
