// The CPU backend's matrix products: fp32 through oneDNN's sgemm; narrow ones (n or k of 1) as
// double-precision sums; bf16 (DnnlBf16Gemm) as oneDNN reorders that round A and B to bfloat16
// and a oneDNN bf16 matmul accumulating in fp32.
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstring>
#include <map>

#include "cpu_gemm.h"

namespace owt {

using dnnl::memory;
using dt = memory::data_type;

void sgemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta == Trans::T ? 'T' : 'N', tb == Trans::T ? 'T' : 'N', m, n,
                                      k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    throw Error(cat("oneDNN sgemm ", m, "x", n, "x", k, " (lda ", lda, ", ldb ", ldb, ", ldc ",
                    ldc, "): status ", static_cast<int>(st)));
}

void narrow_gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  // op(A)(i, p) = a[i * a_i + p * a_p], op(B)(p, j) = b[p * b_p + j * b_j]
  const int64_t a_i = ta == Trans::N ? lda : 1, a_p = ta == Trans::N ? 1 : lda;
  const int64_t b_p = tb == Trans::N ? ldb : 1, b_j = tb == Trans::N ? 1 : ldb;
#pragma omp parallel for schedule(static) if (int64_t{m} * n * k >= (1 << 15))
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) s += static_cast<double>(a[i * a_i + p * a_p]) * b[p * b_p + j * b_j];
      float& cij = c[static_cast<int64_t>(i) * ldc + j];
      cij = static_cast<float>(alpha * s + (beta == 0.f ? 0.0 : static_cast<double>(beta) * cij));
    }
}

struct DnnlBf16Gemm::Plan {
  dnnl::reorder a_to_bf16, b_to_bf16;  // f32 (strided as the caller holds them) -> bf16 (m, k), (k, n)
  memory a_bf16, b_bf16;
  memory::desc a_user, b_user, c_user;
  dnnl::matmul matmul;
};

struct DnnlBf16Gemm::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::map<std::array<int64_t, 10>, std::unique_ptr<Plan>> plans;
};

DnnlBf16Gemm::DnnlBf16Gemm() : impl_(std::make_unique<Impl>()) {}
DnnlBf16Gemm::~DnnlBf16Gemm() = default;

namespace {
int32_t bits_of(float f) {
  int32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
// A row-major operand of logical shape (rows, cols) with leading dimension ld, transposed in
// memory when `t` (stored as (cols, rows)).
memory::desc strided(int rows, int cols, int ld, bool t) {
  return memory::desc({rows, cols}, dt::f32,
                      t ? memory::dims{1, ld} : memory::dims{ld, 1});
}
}  // namespace

// C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C, row-major; k >= 1.
void DnnlBf16Gemm::gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a,
                        int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  const std::array<int64_t, 10> key{ta == Trans::T, tb == Trans::T, m, n, k, lda, ldb, ldc,
                                    bits_of(alpha), bits_of(beta)};
  const dnnl::engine& eng = impl_->eng;
  auto it = impl_->plans.find(key);
  if (it == impl_->plans.end()) {
    auto p = std::make_unique<Plan>();
    try {
      p->a_user = strided(m, k, lda, ta == Trans::T);
      p->b_user = strided(k, n, ldb, tb == Trans::T);
      p->c_user = memory::desc({m, n}, dt::f32, memory::dims{ldc, 1});
      memory::desc a_md({m, k}, dt::bf16, memory::format_tag::ab);
      memory::desc b_md({k, n}, dt::bf16, memory::format_tag::ab);
      p->a_bf16 = memory(a_md, eng);
      p->b_bf16 = memory(b_md, eng);
      p->a_to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(eng, p->a_user, eng, a_md));
      p->b_to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(eng, p->b_user, eng, b_md));
      dnnl::primitive_attr attr;
      if (alpha != 1.f) attr.set_output_scales(0, {alpha});
      if (beta != 0.f) {
        dnnl::post_ops ops;
        ops.append_sum(beta);  // C = alpha AB + beta C
        attr.set_post_ops(ops);
      }
      p->matmul = dnnl::matmul(dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(a_md, b_md, p->c_user), attr, eng));
    } catch (const dnnl::error& e) {
      throw Error(cat("oneDNN bf16 gemm ", m, "x", n, "x", k, ": ", e.what()));
    }
    it = impl_->plans.emplace(key, std::move(p)).first;
  }
  Plan& p = *it->second;
  dnnl::stream& s = impl_->strm;
  memory a_f32(p.a_user, eng, const_cast<float*>(a)), b_f32(p.b_user, eng, const_cast<float*>(b));
  p.a_to_bf16.execute(s, a_f32, p.a_bf16);
  p.b_to_bf16.execute(s, b_f32, p.b_bf16);
  p.matmul.execute(s, {{DNNL_ARG_SRC, p.a_bf16},
                       {DNNL_ARG_WEIGHTS, p.b_bf16},
                       {DNNL_ARG_DST, memory(p.c_user, eng, c)}});
  s.wait();
}

}  // namespace owt
