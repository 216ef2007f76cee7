// Backend: the abstract device ops every layer calls (docs/ARCHITECTURE.md, "Layering"). One implementation per
// device (cpu, cuda); the device is an argument, never a global. Row-major everywhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "owt/backend/elementwise.h"
#include "owt/backend/host_buffer.h"
#include "owt/core/tensor.h"

namespace owt {

// A 2-D convolution over a batch, cross-correlation as in PyTorch.
struct ConvGeom {
  int n, c, h, w;          // input  (N, C, H, W)
  int k, kh, kw;           // weight (K, C, KH, KW), bias (K)
  int stride_h, stride_w, pad_h, pad_w;
  int oh, ow;              // output (N, K, OH, OW)
};
// Max or average pooling; output size uses ceil as in Caffe/cuda-convnet when `ceil_mode`.
struct PoolGeom {
  int n, c, h, w;          // input  (N, C, H, W)
  int size, stride, pad;
  int oh, ow;              // output (N, C, OH, OW)
};
// Cross-channel local response normalisation (AlexNet):
//   scale = k + alpha/size * sum_{c' in window(c)} x[c']^2;  y = x * scale^-beta
struct LrnGeom {
  int n, c, h, w;
  int size;
  float alpha, beta, k;
};

// Batch normalisation over x (N, C, HW): statistics per channel c over n and hw. A (F) input
// is C = F, HW = 1 (BatchNorm1d).
struct BatchNormGeom {
  int n, c, hw;
  float eps;
};

enum class Trans { N, T };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // ---- memory ---------------------------------------------------------------------------
  virtual std::shared_ptr<Buffer> allocate(size_t bytes) = 0;
  Tensor empty(const Shape& shape, DType dtype = DType::F32) {
    return Tensor(allocate(shape.numel() * dtype_size(dtype)), shape, dtype);
  }
  virtual void copy(const void* src, void* dst, size_t bytes) = 0;           // device -> device
  virtual void to_host(const void* src, void* host_dst, size_t bytes) = 0;   // device -> host
  virtual void from_host(const void* host_src, void* dst, size_t bytes) = 0; // host -> device
  // Host memory upload() reads without a staging copy (host_buffer.h): page-locked on CUDA;
  // by default (the CPU) plain aligned memory.
  virtual std::shared_ptr<HostBuffer> allocate_host(size_t bytes) {
    return allocate_aligned_host(bytes);
  }
  // host -> device: src's bytes [src_offset, src_offset + bytes) to dst. From a buffer of this
  // backend's allocate_host the copy may still be queued on return (CUDA): src.wait_unused()
  // before writing src again. By default (the CPU, any other buffer) it is from_host.
  virtual void upload(HostBuffer& src, size_t src_offset, void* dst, size_t bytes) {
    from_host(src.range(src_offset, bytes), dst, bytes);
  }
  virtual void fill(float* x, size_t n, float value) = 0;
  virtual void scale(float* x, size_t n, float alpha) = 0;                   // x *= alpha
  virtual void axpy(float alpha, const float* x, float* y, size_t n) = 0;    // y += alpha x
  virtual void synchronize() = 0;  // wait for all queued work (no-op on CPU)

  // ---- dense ----------------------------------------------------------------------------
  // C (m, n) = alpha * op(A) op(B) + beta * C, row-major, op(A) (m, k), op(B) (k, n).
  virtual void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
                    const float* b, int ldb, float beta, float* c, int ldc) = 0;
  virtual void add_row_vector(float* y, const float* v, int rows, int cols) = 0;   // y[r,:] += v
  virtual void sum_rows(const float* x, float* out, int rows, int cols) = 0;       // out += sum_r x[r,:]
  // Column block copy: dst (rows, dst_cols)[:, dst_col0 : +cols] = src (rows, src_cols)[:, src_col0 : +cols]
  virtual void copy_columns(const float* src, int src_cols, int src_col0, float* dst, int dst_cols,
                            int dst_col0, int rows, int cols) = 0;

  // ---- convolution (weight gradients accumulate: dw += ..., db += ...) -------------------
  virtual void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                              float* y) = 0;
  virtual void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                                    float* dx) = 0;
  virtual void conv2d_backward_filter(const ConvGeom& g, const float* x, const float* dy,
                                      float* dw, float* db) = 0;

  // ---- pooling and normalisation --------------------------------------------------------
  // argmax (N, C, OH, OW) holds the flat input index (within one (n, c) plane) of each max.
  virtual void maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) = 0;
  virtual void maxpool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax,
                                float* dx) = 0;
  // Average over the window clipped to the padded input (count_include_pad = true).
  virtual void avgpool_forward(const PoolGeom& g, const float* x, float* y) = 0;
  virtual void avgpool_backward(const PoolGeom& g, const float* dy, float* dx) = 0;
  // scale (N, C, H, W) is saved for the backward pass.
  virtual void lrn_forward(const LrnGeom& g, const float* x, float* scale, float* y) = 0;
  virtual void lrn_backward(const LrnGeom& g, const float* x, const float* y, const float* scale,
                            const float* dy, float* dx) = 0;

  // ---- batch normalisation (docs/MODEL_FILES.md, "batchnorm") -------------------------------
  // sums (2C) = [sum x, sum x^2] per channel over this worker's rows.
  virtual void batchnorm_sums(const BatchNormGeom& g, const float* x, float* sums) = 0;
  // Training forward from sums (2C) over `count` values per channel (all workers' rows when
  // synchronised): mean = sum x / count, var = sum x^2 / count - mean^2 (biased),
  // invstd = 1 / sqrt(var + eps); y = (x - mean) * invstd * gamma + beta. Saves mean and invstd
  // (C each) for backward; running = (1 - momentum) running + momentum (mean, var count/(count-1)).
  virtual void batchnorm_forward_train(const BatchNormGeom& g, const float* x, const float* sums,
                                       int64_t count, const float* gamma, const float* beta,
                                       float momentum, float* running_mean, float* running_var,
                                       float* save_mean, float* save_invstd, float* y) = 0;
  // Evaluation: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
  virtual void batchnorm_forward_eval(const BatchNormGeom& g, const float* x, const float* gamma,
                                      const float* beta, const float* running_mean,
                                      const float* running_var, float* y) = 0;
  // dsums (2C) = [sum dy, sum dy * xhat] per channel over this worker's rows,
  // xhat = (x - mean) * invstd. They are also the local gradients of beta and gamma.
  virtual void batchnorm_backward_sums(const BatchNormGeom& g, const float* x, const float* dy,
                                       const float* save_mean, const float* save_invstd,
                                       float* dsums) = 0;
  // dx = gamma * invstd * (dy - sum dy / count - xhat * sum(dy xhat) / count), from dsums over
  // the same `count` values as the forward.
  virtual void batchnorm_backward_data(const BatchNormGeom& g, const float* x, const float* dy,
                                       const float* dsums, int64_t count, const float* gamma,
                                       const float* save_mean, const float* save_invstd,
                                       float* dx) = 0;

  // ---- elementwise ----------------------------------------------------------------------
  virtual void relu_forward(const float* x, float* y, size_t n) = 0;
  virtual void relu_backward(const float* y, const float* dy, float* dx, size_t n) = 0;
  // x, y (rows, cols): y = x * dropout_scale(key, r, c). Backward is the same map on dy.
  virtual void dropout_apply(const DropoutKey& key, const float* x, float* y, int rows,
                             int cols) = 0;

  // ---- loss pieces (over a class shard: logits (rows, cols), global class = col0 + col) --
  virtual void row_max(const float* logits, int rows, int cols, float* out) = 0;        // (rows)
  // out[r] = sum_c exp(logits[r,c] - row_max[r])
  virtual void row_sumexp(const float* logits, const float* row_max, int rows, int cols,
                          float* out) = 0;
  // out[r] = logits[r, label[r] - col0] if the label falls in this shard, else 0.
  virtual void pick_target(const float* logits, const int32_t* labels, int rows, int cols,
                           int col0, float* out) = 0;
  // out[r] = sum_c logits[r,c] (label smoothing's mean over the classes)
  virtual void row_sum(const float* logits, int rows, int cols, float* out) = 0;
  // dlogits = g.scale * (softmax - g.on_target * onehot(label) - g.uniform)
  virtual void xent_backward(const float* logits, const float* row_max, const float* row_sumexp,
                             const int32_t* labels, int rows, int cols, int col0,
                             const XentGrad& g, float* dlogits) = 0;

  // ---- optimizer ------------------------------------------------------------------------
  virtual void sgd_update(const SgdStep& step, float* w, const float* g, float* v, size_t n) = 0;
};

// The CPU backend (OpenBLAS + OpenMP + oneDNN); always available. `precision` is the model
// file's key: tf32 and fp32-strict both compute in fp32 on the CPU; bf16 rounds convolution and
// matrix-product operands to bfloat16 (fp32 accumulation, fp32 parameters and optimizer state)
// and throws Error on a CPU without AVX512_BF16.
std::unique_ptr<Backend> make_cpu_backend(const std::string& precision = "tf32");
// Whether oneDNN runs bf16 kernels on this CPU (AVX512_BF16 or AMX, within DNNL_MAX_CPU_ISA).
bool cpu_has_bf16();

}  // namespace owt
