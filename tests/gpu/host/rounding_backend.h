// RoundingBackend: the CPU backend with the CUDA backend's arithmetic in each precision
// emulated where it differs: the operands of convolutions and GEMMs rounded as the GPU rounds
// them (tf32: 10 explicit mantissa bits, round to nearest, or in "tf32-truncate" mode cut, as
// tensor cores that read only the first 10 mantissa bits would; bf16: 7 bits, round to nearest
// even, and a bf16 convolution's result rounded too, as cuda_conv.cpp writes it into a bf16
// copy), or, for fp32-strict, convolutions and GEMMs summed in double (another correct
// summation order than the CPU's float one). Products of tf32 or bf16 operands are exact in
// float, so the CPU's float ops on rounded operands compute what tensor cores compute, up to
// summation order. Every other op is the CPU's: the CUDA kernels run the same float maths.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "owt/backend/backend.h"

namespace owt::test {

inline float round_tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;  // inf, nan
  u = (u + 0x1000u) & ~0x1fffu;                     // to nearest, ties away (cvt.rna.tf32)
  std::memcpy(&v, &u, 4);
  return v;
}

inline float truncate_tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;
  u &= ~0x1fffu;  // the low 13 mantissa bits dropped: toward zero
  std::memcpy(&v, &u, 4);
  return v;
}

inline float round_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;  // to nearest even (__float2bfloat16_rn)
  std::memcpy(&v, &u, 4);
  return v;
}

class RoundingBackend final : public Backend {
 public:
  // mode: "tf32", "tf32-truncate", "bf16" or "fp32-strict" (double-precision conv and GEMM).
  RoundingBackend(std::unique_ptr<Backend> cpu, std::string mode)
      : cpu_(std::move(cpu)), mode_(std::move(mode)) {}

  Device device() const override { return Device::CPU; }
  std::string name() const override { return "cpu-" + mode_; }

  std::shared_ptr<Buffer> allocate(size_t bytes) override { return cpu_->allocate(bytes); }
  void copy(const void* s, void* d, size_t n) override { cpu_->copy(s, d, n); }
  void to_host(const void* s, void* d, size_t n) override { cpu_->to_host(s, d, n); }
  void from_host(const void* s, void* d, size_t n) override { cpu_->from_host(s, d, n); }
  void fill(float* x, size_t n, float v) override { cpu_->fill(x, n, v); }
  void scale(float* x, size_t n, float a) override { cpu_->scale(x, n, a); }
  void axpy(float a, const float* x, float* y, size_t n) override { cpu_->axpy(a, x, y, n); }
  void synchronize() override { cpu_->synchronize(); }

  void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override {
    const size_t na = static_cast<size_t>(ta == Trans::N ? m : k) * lda;
    const size_t nb = static_cast<size_t>(tb == Trans::N ? k : n) * ldb;
    if (mode_ == "fp32-strict") {
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int l = 0; l < k; ++l) {
            double av = ta == Trans::N ? a[size_t(i) * lda + l] : a[size_t(l) * lda + i];
            double bv = tb == Trans::N ? b[size_t(l) * ldb + j] : b[size_t(j) * ldb + l];
            s += av * bv;
          }
          float& cv = c[size_t(i) * ldc + j];
          cv = static_cast<float>(alpha * s + (beta == 0 ? 0.0 : double(beta) * cv));
        }
      return;
    }
    std::vector<float> ra = rounded(a, na), rb = rounded(b, nb);
    cpu_->gemm(ta, tb, m, n, k, alpha, ra.data(), lda, rb.data(), ldb, beta, c, ldc);
  }
  void add_row_vector(float* y, const float* v, int r, int c) override { cpu_->add_row_vector(y, v, r, c); }
  void sum_rows(const float* x, float* o, int r, int c) override { cpu_->sum_rows(x, o, r, c); }
  void copy_columns(const float* s, int sc, int s0, float* d, int dc, int d0, int r,
                    int c) override {
    cpu_->copy_columns(s, sc, s0, d, dc, d0, r, c);
  }

  void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                      float* y) override {
    if (mode_ == "fp32-strict") return conv_f64(g, x, w, bias, y, nullptr, nullptr, 0);
    std::vector<float> rx = rounded(x, xn(g)), rw = rounded(w, wn(g));
    cpu_->conv2d_forward(g, rx.data(), rw.data(), nullptr, y);
    if (mode_ == "bf16") round_in_place(y, yn(g));  // y is a bf16 copy, then + bias in fp32
    if (bias) add_bias(g, bias, y);
  }
  void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                            float* dx) override {
    if (mode_ == "fp32-strict") return conv_f64(g, nullptr, w, nullptr, nullptr, dy, dx, 1);
    std::vector<float> rdy = rounded(dy, yn(g)), rw = rounded(w, wn(g));
    cpu_->conv2d_backward_data(g, rdy.data(), rw.data(), dx);
    if (mode_ == "bf16") round_in_place(dx, xn(g));
  }
  void conv2d_backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                              float* db) override {
    if (db) channel_sums(g, dy, db);  // fp32 from fp32 dy in every mode (own kernel on GPU)
    if (mode_ == "fp32-strict") return conv_f64(g, x, nullptr, nullptr, nullptr, dy, dw, 2);
    std::vector<float> rx = rounded(x, xn(g)), rdy = rounded(dy, yn(g));
    std::vector<float> part(wn(g), 0.f);  // the op's own result, then dw += it
    cpu_->conv2d_backward_filter(g, rx.data(), rdy.data(), part.data(), nullptr);
    if (mode_ == "bf16") round_in_place(part.data(), part.size());
    for (size_t i = 0; i < part.size(); ++i) dw[i] += part[i];
  }

  void maxpool_forward(const PoolGeom& g, const float* x, float* y, int32_t* a) override { cpu_->maxpool_forward(g, x, y, a); }
  void maxpool_backward(const PoolGeom& g, const float* dy, const int32_t* a, float* dx) override { cpu_->maxpool_backward(g, dy, a, dx); }
  void avgpool_forward(const PoolGeom& g, const float* x, float* y) override { cpu_->avgpool_forward(g, x, y); }
  void avgpool_backward(const PoolGeom& g, const float* dy, float* dx) override { cpu_->avgpool_backward(g, dy, dx); }
  void lrn_forward(const LrnGeom& g, const float* x, float* s, float* y) override { cpu_->lrn_forward(g, x, s, y); }
  void lrn_backward(const LrnGeom& g, const float* x, const float* y, const float* s, const float* dy,
                    float* dx) override {
    cpu_->lrn_backward(g, x, y, s, dy, dx);
  }
  // Batch normalisation: the CUDA kernels run plain fp32 maths with double sums, as the CPU.
  void batchnorm_sums(const BatchNormGeom& g, const float* x, float* sums) override {
    cpu_->batchnorm_sums(g, x, sums);
  }
  void batchnorm_forward_train(const BatchNormGeom& g, const float* x, const float* sums,
                               int64_t count, const float* gamma, const float* beta,
                               float momentum, float* running_mean, float* running_var,
                               float* save_mean, float* save_invstd, float* y) override {
    cpu_->batchnorm_forward_train(g, x, sums, count, gamma, beta, momentum, running_mean,
                                  running_var, save_mean, save_invstd, y);
  }
  void batchnorm_forward_eval(const BatchNormGeom& g, const float* x, const float* gamma,
                              const float* beta, const float* running_mean,
                              const float* running_var, float* y) override {
    cpu_->batchnorm_forward_eval(g, x, gamma, beta, running_mean, running_var, y);
  }
  void batchnorm_backward_sums(const BatchNormGeom& g, const float* x, const float* dy,
                               const float* save_mean, const float* save_invstd,
                               float* dsums) override {
    cpu_->batchnorm_backward_sums(g, x, dy, save_mean, save_invstd, dsums);
  }
  void batchnorm_backward_data(const BatchNormGeom& g, const float* x, const float* dy,
                               const float* dsums, int64_t count, const float* gamma,
                               const float* save_mean, const float* save_invstd,
                               float* dx) override {
    cpu_->batchnorm_backward_data(g, x, dy, dsums, count, gamma, save_mean, save_invstd, dx);
  }
  void relu_forward(const float* x, float* y, size_t n) override { cpu_->relu_forward(x, y, n); }
  void relu_backward(const float* y, const float* dy, float* dx, size_t n) override { cpu_->relu_backward(y, dy, dx, n); }
  void dropout_apply(const DropoutKey& k, const float* x, float* y, int r, int c) override { cpu_->dropout_apply(k, x, y, r, c); }
  void row_max(const float* l, int r, int c, float* o) override { cpu_->row_max(l, r, c, o); }
  void row_sumexp(const float* l, const float* m, int r, int c, float* o) override { cpu_->row_sumexp(l, m, r, c, o); }
  void pick_target(const float* l, const int32_t* lab, int r, int c, int c0, float* o) override {
    cpu_->pick_target(l, lab, r, c, c0, o);
  }
  void row_sum(const float* l, int r, int c, float* o) override { cpu_->row_sum(l, r, c, o); }
  void xent_backward(const float* l, const float* m, const float* s, const int32_t* lab, int r,
                     int c, int c0, const XentGrad& g, float* d) override {
    cpu_->xent_backward(l, m, s, lab, r, c, c0, g, d);
  }
  void sgd_update(const SgdStep& s, float* w, const float* g, float* v, size_t n) override {
    cpu_->sgd_update(s, w, g, v, n);
  }

 private:
  static size_t xn(const ConvGeom& g) { return size_t(g.n) * g.c * g.h * g.w; }
  static size_t wn(const ConvGeom& g) { return size_t(g.k) * g.c * g.kh * g.kw; }
  static size_t yn(const ConvGeom& g) { return size_t(g.n) * g.k * g.oh * g.ow; }

  float round_one(float v) const {
    if (mode_ == "tf32") return round_tf32(v);
    if (mode_ == "tf32-truncate") return truncate_tf32(v);
    return round_bf16(v);
  }
  std::vector<float> rounded(const float* p, size_t n) const {
    std::vector<float> out(p, p + n);
    for (float& v : out) v = round_one(v);
    return out;
  }
  void round_in_place(float* p, size_t n) const {
    for (size_t i = 0; i < n; ++i) p[i] = round_one(p[i]);
  }
  static void add_bias(const ConvGeom& g, const float* bias, float* y) {
    const size_t plane = size_t(g.oh) * g.ow;
    for (int n = 0; n < g.n; ++n)
      for (int k = 0; k < g.k; ++k)
        for (size_t i = 0; i < plane; ++i) y[(size_t(n) * g.k + k) * plane + i] += bias[k];
  }
  static void channel_sums(const ConvGeom& g, const float* dy, float* db) {
    const size_t plane = size_t(g.oh) * g.ow;
    for (int k = 0; k < g.k; ++k) {
      double s = 0;
      for (int n = 0; n < g.n; ++n)
        for (size_t i = 0; i < plane; ++i) s += dy[(size_t(n) * g.k + k) * plane + i];
      db[k] += static_cast<float>(s);
    }
  }
  // op 0: y = conv(x, w) + bias; 1: dx = conv_data(dy, w); 2: dw += conv_filter(x, dy). In
  // double, rounded to float once.
  static void conv_f64(const ConvGeom& g, const float* x, const float* w, const float* bias,
                       float* y, const float* dy, float* out, int op) {
    std::vector<double> acc(op == 0 ? yn(g) : op == 1 ? xn(g) : wn(g), 0.0);
    for (int n = 0; n < g.n; ++n)
      for (int k = 0; k < g.k; ++k)
        for (int oh = 0; oh < g.oh; ++oh)
          for (int ow = 0; ow < g.ow; ++ow) {
            const size_t yi = ((size_t(n) * g.k + k) * g.oh + oh) * g.ow + ow;
            for (int c = 0; c < g.c; ++c)
              for (int i = 0; i < g.kh; ++i)
                for (int j = 0; j < g.kw; ++j) {
                  const int ih = oh * g.stride_h - g.pad_h + i, iw = ow * g.stride_w - g.pad_w + j;
                  if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                  const size_t xi = ((size_t(n) * g.c + c) * g.h + ih) * g.w + iw;
                  const size_t wi = ((size_t(k) * g.c + c) * g.kh + i) * g.kw + j;
                  if (op == 0) acc[yi] += double(x[xi]) * w[wi];
                  if (op == 1) acc[xi] += double(dy[yi]) * w[wi];
                  if (op == 2) acc[wi] += double(x[xi]) * dy[yi];
                }
          }
    if (op == 0) {
      const size_t plane = size_t(g.oh) * g.ow;
      for (size_t i = 0; i < acc.size(); ++i)
        y[i] = static_cast<float>(acc[i] + (bias ? bias[(i / plane) % g.k] : 0.f));
    } else if (op == 1) {
      for (size_t i = 0; i < acc.size(); ++i) out[i] = static_cast<float>(acc[i]);
    } else {
      for (size_t i = 0; i < acc.size(); ++i) out[i] += static_cast<float>(acc[i]);
    }
  }

  std::unique_ptr<Backend> cpu_;
  std::string mode_;
};

}  // namespace owt::test
