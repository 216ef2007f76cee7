// CudaBackend: owt::Backend on one GPU. Every op is queued on the backend's own stream and
// returns without waiting (to_host and synchronize wait). cuBLAS for GEMM, cuDNN for
// convolution (cuda_conv.cpp), own kernels for everything with an exact CPU convention:
// pooling and LRN (cuda_pool_lrn.cu), batch normalisation (cuda_batchnorm.cu), elementwise,
// dense helpers, loss pieces and SGD (cuda_kernels.cu, running the OWT_HOST_DEVICE maths of
// elementwise.h). Internal header.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <memory>
#include <string>
#include <type_traits>

#include "cuda_allocator.h"
#include "owt/backend/backend.h"

namespace owt {

enum class Precision { Tf32, Fp32Strict, Bf16 };
Precision parse_precision(const std::string& name);  // "tf32" | "fp32-strict" | "bf16"
const char* precision_name(Precision p);

class CudaConv;

// Owning handles: whatever the constructor made is released if a later step throws.
struct StreamDeleter {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct CublasDeleter {
  void operator()(cublasHandle_t h) const { cublasDestroy(h); }
};
struct CudnnDeleter {
  void operator()(cudnnHandle_t h) const { cudnnDestroy(h); }
};
using StreamHandle = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
using CublasHandle = std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, CublasDeleter>;
using CudnnHandle = std::unique_ptr<std::remove_pointer_t<cudnnHandle_t>, CudnnDeleter>;

class CudaBackend final : public Backend {
 public:
  // Makes `device` current for the calling thread, which then drives the backend (CUDA keeps
  // the current device per thread; the allocator sets its own device around every driver
  // call, so memory always lands on `device`).
  CudaBackend(int device, Precision precision);
  ~CudaBackend() override;

  Device device() const override { return Device::CUDA; }
  std::string name() const override { return "cuda"; }

  int device_index() const { return device_; }
  Precision precision() const { return precision_; }
  cudaStream_t stream() const { return stream_.get(); }
  cudnnHandle_t cudnn() const { return cudnn_.get(); }
  DeviceAllocator& allocator() { return *alloc_; }

  // memory (cuda_backend.cpp)
  std::shared_ptr<Buffer> allocate(size_t bytes) override;
  void copy(const void* src, void* dst, size_t bytes) override;
  void to_host(const void* src, void* host_dst, size_t bytes) override;
  void from_host(const void* host_src, void* dst, size_t bytes) override;
  // Page-locked (PinnedHostBuffer); upload from one queues the copy straight from it and
  // records its event. Any other HostBuffer goes through from_host.
  std::shared_ptr<HostBuffer> allocate_host(size_t bytes) override;
  void upload(HostBuffer& src, size_t src_offset, void* dst, size_t bytes) override;
  void synchronize() override;

  // dense: GEMM (cuda_backend.cpp), the rest (cuda_kernels.cu)
  void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override;
  void fill(float* x, size_t n, float value) override;
  void scale(float* x, size_t n, float alpha) override;
  void axpy(float alpha, const float* x, float* y, size_t n) override;
  void add_row_vector(float* y, const float* v, int rows, int cols) override;
  void sum_rows(const float* x, float* out, int rows, int cols) override;
  void copy_columns(const float* src, int src_cols, int src_col0, float* dst, int dst_cols,
                    int dst_col0, int rows, int cols) override;

  // convolution (cuda_conv.cpp)
  void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                      float* y) override;
  void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                            float* dx) override;
  void conv2d_backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                              float* db) override;

  // pooling, LRN (cuda_pool_lrn.cu)
  void maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) override;
  void maxpool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax,
                        float* dx) override;
  void avgpool_forward(const PoolGeom& g, const float* x, float* y) override;
  void avgpool_backward(const PoolGeom& g, const float* dy, float* dx) override;
  void lrn_forward(const LrnGeom& g, const float* x, float* scale, float* y) override;
  void lrn_backward(const LrnGeom& g, const float* x, const float* y, const float* scale,
                    const float* dy, float* dx) override;

  // batch normalisation (cuda_batchnorm.cu)
  void batchnorm_sums(const BatchNormGeom& g, const float* x, float* sums) override;
  void batchnorm_forward_train(const BatchNormGeom& g, const float* x, const float* sums,
                               int64_t count, const float* gamma, const float* beta,
                               float momentum, float* running_mean, float* running_var,
                               float* save_mean, float* save_invstd, float* y) override;
  void batchnorm_forward_eval(const BatchNormGeom& g, const float* x, const float* gamma,
                              const float* beta, const float* running_mean,
                              const float* running_var, float* y) override;
  void batchnorm_backward_sums(const BatchNormGeom& g, const float* x, const float* dy,
                               const float* save_mean, const float* save_invstd,
                               float* dsums) override;
  void batchnorm_backward_data(const BatchNormGeom& g, const float* x, const float* dy,
                               const float* dsums, int64_t count, const float* gamma,
                               const float* save_mean, const float* save_invstd,
                               float* dx) override;

  // elementwise, loss pieces, optimizer (cuda_kernels.cu)
  void relu_forward(const float* x, float* y, size_t n) override;
  void relu_backward(const float* y, const float* dy, float* dx, size_t n) override;
  void dropout_apply(const DropoutKey& key, const float* x, float* y, int rows,
                     int cols) override;
  void row_max(const float* logits, int rows, int cols, float* out) override;
  void row_sumexp(const float* logits, const float* row_max, int rows, int cols,
                  float* out) override;
  void pick_target(const float* logits, const int32_t* labels, int rows, int cols, int col0,
                   float* out) override;
  void row_sum(const float* logits, int rows, int cols, float* out) override;
  void xent_backward(const float* logits, const float* row_max, const float* row_sumexp,
                     const int32_t* labels, int rows, int cols, int col0, const XentGrad& g,
                     float* dlogits) override;
  void sgd_update(const SgdStep& step, float* w, const float* g, float* v, size_t n) override;

  // Device memory written by work this backend did not queue (NCCL): cuda_written_outside.
  void written_outside(const void* p, size_t bytes) { wrote(p, bytes); }

 private:
  // Every op that writes device memory reports the range here, so that bf16 copies the
  // convolutions keep of that memory are dropped (CudaConv's operand cache, cuda_conv.h).
  void wrote(const void* p, size_t bytes);

  int device_;
  Precision precision_;
  // Declared in creation order; destroyed in reverse (conv's buffers go back to the allocator
  // before it may die, handles before their stream).
  std::shared_ptr<DeviceAllocator> alloc_;
  StreamHandle stream_;
  CublasHandle cublas_;
  CudnnHandle cudnn_;
  PinnedStaging staging_;
  std::unique_ptr<CudaConv> conv_;
};

// Kernels the .cpp files launch (cuda_kernels.cu); all queued on `stream`.
// bf16 copies are __nv_bfloat16 arrays passed as void* so that .cpp files need no cuda_bf16.h.
void launch_f32_to_bf16(const float* in, void* out, size_t n, cudaStream_t stream);
// y (N, K, P) = float(yb) + bias[k] (bias may be null)
void launch_bf16_to_f32_bias(const void* yb, const float* bias, float* y, int n, int k,
                             int64_t p, cudaStream_t stream);
// out += float(in)
void launch_bf16_accumulate(const void* in, float* out, size_t n, cudaStream_t stream);
// y (N, K, P) += bias[k]
void launch_add_channel_bias(float* y, const float* bias, int n, int k, int64_t p,
                             cudaStream_t stream);
// db (K) += sum over n, p of dy (N, K, P). Two passes, each in a fixed order (deterministic):
// channel_sums_parts(...) blocks per channel write partial sums into `parts` (device scratch
// of channel_sums_parts(n, p) * k floats), then one warp per channel adds them up.
int channel_sums_parts(int n, int64_t p);
void launch_channel_sums(const float* dy, float* db, int n, int k, int64_t p, float* parts,
                         cudaStream_t stream);
// c (m, n, row stride ldc) *= beta
void launch_scale_matrix(float* c, int m, int n, int ldc, float beta, cudaStream_t stream);

}  // namespace owt
