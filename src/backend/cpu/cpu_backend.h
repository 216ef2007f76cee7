// CpuBackend: owt::Backend on the host (OpenMP loops; oneDNN convolutions and gemms, in bf16
// too); internal to src/backend/cpu (engines: cpu_conv.h, cpu_gemm.h). One host thread drives it.
#pragma once
#include <memory>
#include <string>

#include "owt/backend/backend.h"

namespace owt {

class DnnlBf16Gemm;
class DnnlConv;
class Im2colConv;

class CpuBackend final : public Backend {
 public:
  // bf16: convolutions and matrix products round their operands to bfloat16 and accumulate in
  // fp32 (everything else, parameters and optimizer state stay fp32). Needs AVX512_BF16.
  explicit CpuBackend(bool bf16 = false);
  ~CpuBackend() override;

  Device device() const override { return Device::CPU; }
  std::string name() const override { return bf16_ ? "cpu-bf16" : "cpu"; }

  // memory (cpu_backend.cpp)
  std::shared_ptr<Buffer> allocate(size_t bytes) override;
  void copy(const void* src, void* dst, size_t bytes) override;
  void to_host(const void* src, void* host_dst, size_t bytes) override;
  void from_host(const void* host_src, void* dst, size_t bytes) override;
  void fill(float* x, size_t n, float value) override;
  void scale(float* x, size_t n, float alpha) override;
  void axpy(float alpha, const float* x, float* y, size_t n) override;
  void synchronize() override {}

  // dense (cpu_backend.cpp)
  void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override;
  void add_row_vector(float* y, const float* v, int rows, int cols) override;
  void sum_rows(const float* x, float* out, int rows, int cols) override;
  void copy_columns(const float* src, int src_cols, int src_col0, float* dst, int dst_cols,
                    int dst_col0, int rows, int cols) override;

  // convolution: oneDNN (DnnlConv), except backward-data into fewer than
  // kDnnlMinDataChannels channels, which goes to Im2colConv (cpu_conv.h)
  void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                      float* y) override;
  void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                            float* dx) override;
  void conv2d_backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                              float* db) override;

  // pooling (cpu_pool.cpp), LRN (cpu_lrn.cpp)
  void maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) override;
  void maxpool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax,
                        float* dx) override;
  void avgpool_forward(const PoolGeom& g, const float* x, float* y) override;
  void avgpool_backward(const PoolGeom& g, const float* dy, float* dx) override;
  void lrn_forward(const LrnGeom& g, const float* x, float* scale, float* y) override;
  void lrn_backward(const LrnGeom& g, const float* x, const float* y, const float* scale,
                    const float* dy, float* dx) override;

  // batch normalisation (cpu_batchnorm.cpp)
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

  // elementwise, loss pieces, optimizer (cpu_backend.cpp)
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

 private:
  bool bf16_;
  std::unique_ptr<DnnlConv> conv_;
  std::unique_ptr<Im2colConv> im2col_;
  std::unique_ptr<DnnlBf16Gemm> bf16_gemm_;  // null unless bf16_
};

}  // namespace owt
