// CPU backend memory, gemm (all four transpose combinations), row/column helpers, the
// elementwise ops against the shared scalar functions of elementwise.h, the loss pieces,
// dropout determinism and the SGD update against its formula.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "backend_test_util.h"
#include "owt/backend/backend.h"

namespace owt {
namespace {

using test::all_near;
using test::random_vec;

// Large enough for the OpenMP paths (the backend runs tiny arrays serially).
constexpr size_t kBig = 50000;

TEST(CpuMemory, AllocateIsAlignedAndCopiesRoundTrip) {
  auto be = make_cpu_backend();
  EXPECT_EQ(be->device(), Device::CPU);
  for (size_t bytes : {size_t(0), size_t(4), size_t(100), size_t(4096 + 4)}) {
    auto buf = be->allocate(bytes);
    ASSERT_NE(buf->ptr, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf->ptr) % 64, 0u);
    EXPECT_EQ(buf->bytes, bytes);
  }
  Tensor a = be->empty(Shape{3, 5}), b = be->empty(Shape{3, 5});
  auto src = random_vec(15, 1);
  std::vector<float> back(15);
  be->from_host(src.data(), a.f32(), 15 * sizeof(float));
  be->copy(a.f32(), b.f32(), 15 * sizeof(float));
  be->to_host(b.f32(), back.data(), 15 * sizeof(float));
  be->synchronize();
  EXPECT_EQ(back, src);
}

TEST(CpuMemory, FillScaleAxpy) {
  auto be = make_cpu_backend();
  auto x = random_vec(kBig, 2), y = random_vec(kBig, 3);
  std::vector<double> want(kBig);
  for (size_t i = 0; i < kBig; ++i) want[i] = double(y[i]) + 0.5 * x[i];
  be->axpy(0.5f, x.data(), y.data(), kBig);
  EXPECT_TRUE(all_near(y, want, 1e-6));
  for (size_t i = 0; i < kBig; ++i) want[i] = double(y[i]) * -3.0;
  be->scale(y.data(), kBig, -3.f);
  EXPECT_TRUE(all_near(y, want, 1e-6));
  be->fill(y.data(), kBig, 0.25f);
  EXPECT_TRUE(all_near(y, std::vector<double>(kBig, 0.25), 0.0));
}

TEST(Gemm, AllTransposeCombinationsWithStridesAlphaBeta) {
  auto be = make_cpu_backend();
  const int m = 7, n = 5, k = 9, pad = 3;
  uint32_t seed = 10;
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      SCOPED_TRACE(cat("ta ", ta == Trans::T, " tb ", tb == Trans::T));
      // Stored shapes: A (m, k) or (k, m); B (k, n) or (n, k); leading dims padded.
      int a_rows = ta == Trans::N ? m : k, a_cols = ta == Trans::N ? k : m;
      int b_rows = tb == Trans::N ? k : n, b_cols = tb == Trans::N ? n : k;
      int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
      auto a = random_vec(size_t(a_rows) * lda, seed++), b = random_vec(size_t(b_rows) * ldb, seed++);
      auto c = random_vec(size_t(m) * ldc, seed++);
      auto at = [&](int i, int p) { return ta == Trans::N ? a[i * lda + p] : a[p * lda + i]; };
      auto bt = [&](int p, int j) { return tb == Trans::N ? b[p * ldb + j] : b[j * ldb + p]; };
      const float alpha = 0.7f, beta = -1.3f;
      std::vector<double> want(c.begin(), c.end());
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int p = 0; p < k; ++p) s += double(at(i, p)) * bt(p, j);
          want[i * ldc + j] = alpha * s + beta * double(c[i * ldc + j]);
        }
      be->gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      EXPECT_TRUE(all_near(c, want, 1e-5, 1e-5));  // padding columns untouched too
    }
}

// n = 1 (matrix-vector) and k = 1 (outer product) are summed in double and rounded once: every
// element equals the double reference rounded to float, in fp32 and in bf16 alike.
TEST(Gemm, NarrowProductsAreCorrectlyRounded) {
  uint32_t seed = 70;
  for (const char* precision : {"tf32", "bf16"}) {
    if (std::string(precision) == "bf16" && !cpu_has_bf16()) continue;
    auto be = make_cpu_backend(precision);
    for (auto [n, k] : {std::pair{1, 257}, std::pair{33, 1}})
      for (Trans ta : {Trans::N, Trans::T})
        for (Trans tb : {Trans::N, Trans::T}) {
          SCOPED_TRACE(cat(precision, " n ", n, " k ", k, " ta ", ta == Trans::T, " tb ", tb == Trans::T));
          const int m = 41;
          const int lda = ta == Trans::N ? k : m, ldb = tb == Trans::N ? n : k;
          auto a = random_vec(size_t(m) * k, seed++), b = random_vec(size_t(k) * n, seed++, 0.5f, 1.5f);
          auto c = random_vec(size_t(m) * n, seed++);
          const float alpha = 1.f / 49, beta = 0.5f;
          std::vector<float> want(c.size());
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
              double s = 0;
              for (int p = 0; p < k; ++p)
                s += double(ta == Trans::N ? a[i * lda + p] : a[p * lda + i]) *
                     (tb == Trans::N ? b[p * ldb + j] : b[j * ldb + p]);
              want[i * n + j] = float(alpha * s + double(beta) * c[i * n + j]);
            }
          be->gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), n);
          EXPECT_EQ(c, want);
        }
  }
}

// precision bf16: the same cases against a reference on operands rounded to bfloat16 (fp32
// accumulation error only), every transpose, stride, alpha and beta; twice per shape (cached
// plans). A product with n = 1 (a sum, as global_avgpool's) stays fp32.
TEST(Gemm, Bf16RoundsOperandsAndAccumulatesInFp32) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU (oneDNN's view)";
  auto be = make_cpu_backend("bf16");
  uint32_t seed = 50;
  for (int n : {37, 1})
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T})
        for (int rep = 0; rep < 2; ++rep) {
          SCOPED_TRACE(cat("n ", n, " ta ", ta == Trans::T, " tb ", tb == Trans::T, " rep ", rep));
          const int m = 19, k = 300, pad = 3;
          int a_rows = ta == Trans::N ? m : k, a_cols = ta == Trans::N ? k : m;
          int b_rows = tb == Trans::N ? k : n, b_cols = tb == Trans::N ? n : k;
          int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
          auto a = random_vec(size_t(a_rows) * lda, seed++), b = random_vec(size_t(b_rows) * ldb, seed++);
          auto c = random_vec(size_t(m) * ldc, seed++);
          const bool rounds = n > 1;
          const auto ar = rounds ? test::rounded_bf16(a) : a, br = rounds ? test::rounded_bf16(b) : b;
          auto at = [&](int i, int p) { return ta == Trans::N ? ar[i * lda + p] : ar[p * lda + i]; };
          auto bt = [&](int p, int j) { return tb == Trans::N ? br[p * ldb + j] : br[j * ldb + p]; };
          auto at_exact = [&](int i, int p) { return ta == Trans::N ? a[i * lda + p] : a[p * lda + i]; };
          auto bt_exact = [&](int p, int j) { return tb == Trans::N ? b[p * ldb + j] : b[j * ldb + p]; };
          const float alpha = rep ? 1.f : 0.7f, beta = rep ? 0.f : -1.3f;
          std::vector<double> want(c.begin(), c.end()), exact(c.begin(), c.end());
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
              double s = 0, e = 0;
              for (int p = 0; p < k; ++p) s += double(at(i, p)) * bt(p, j), e += double(at_exact(i, p)) * bt_exact(p, j);
              want[i * ldc + j] = alpha * s + beta * double(c[i * ldc + j]);
              exact[i * ldc + j] = alpha * e + beta * double(c[i * ldc + j]);
            }
          be->gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
          EXPECT_TRUE(all_near(c, want, 2e-5, 1e-5));  // padding columns untouched too
          if (rounds) {
            EXPECT_FALSE(all_near(c, exact, 2e-5, 1e-5));
          }
        }
}

TEST(Dense, AddRowVectorSumRowsCopyColumns) {
  auto be = make_cpu_backend();
  const int rows = 300, cols = 700;  // several column blocks, parallel path
  auto x = random_vec(size_t(rows) * cols, 20), v = random_vec(cols, 21);
  std::vector<double> want(x.begin(), x.end());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) want[r * cols + c] += v[c];
  be->add_row_vector(x.data(), v.data(), rows, cols);
  EXPECT_TRUE(all_near(x, want, 1e-6));

  auto out = random_vec(cols, 22);  // sum_rows accumulates into out
  std::vector<double> sums(out.begin(), out.end());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) sums[c] += x[r * cols + c];
  be->sum_rows(x.data(), out.data(), rows, cols);
  EXPECT_TRUE(all_near(out, sums, 1e-3));

  const int dst_cols = 40;
  std::vector<float> dst(size_t(rows) * dst_cols, -1.f);
  be->copy_columns(x.data(), cols, 100, dst.data(), dst_cols, 5, rows, 30);
  std::vector<double> want_dst(dst.size(), -1.0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < 30; ++c) want_dst[r * dst_cols + 5 + c] = x[r * cols + 100 + c];
  EXPECT_TRUE(all_near(dst, want_dst, 0.0));
}

TEST(Elementwise, ReluMatchesScalarFunctions) {
  auto be = make_cpu_backend();
  auto x = random_vec(kBig, 30), dy = random_vec(kBig, 31);
  std::vector<float> y(kBig), dx(kBig);
  be->relu_forward(x.data(), y.data(), kBig);
  be->relu_backward(y.data(), dy.data(), dx.data(), kBig);
  std::vector<float> want_y(kBig), want_dx(kBig);
  int positive = 0;
  for (size_t i = 0; i < kBig; ++i) {
    want_y[i] = relu_forward_one(x[i]);
    want_dx[i] = relu_backward_one(want_y[i], dy[i]);
    positive += x[i] > 0;
  }
  EXPECT_EQ(y, want_y);
  EXPECT_EQ(dx, want_dx);
  EXPECT_GT(positive, 0);
  EXPECT_LT(positive, int(kBig));
}

DropoutKey dropout_key(uint32_t step) {
  return DropoutKey{rng_key(1234, Purpose::Dropout), name_hash("drop1"), step, 256, 512, 0.5f};
}

TEST(Elementwise, DropoutMatchesScalarAndIsKeyed) {
  auto be = make_cpu_backend();
  const int rows = 64, cols = 1024;
  std::vector<float> ones(size_t(rows) * cols, 1.f), m1(ones.size()), m2(ones.size()),
      m3(ones.size());
  DropoutKey key = dropout_key(7);
  be->dropout_apply(key, ones.data(), m1.data(), rows, cols);
  be->dropout_apply(key, ones.data(), m2.data(), rows, cols);
  be->dropout_apply(dropout_key(8), ones.data(), m3.data(), rows, cols);
  EXPECT_EQ(m1, m2);  // same key, same mask
  EXPECT_NE(m1, m3);  // next step, fresh mask
  size_t kept = 0;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      float s = dropout_scale(key, r, c);
      ASSERT_EQ(m1[r * cols + c], s);
      kept += s != 0.f;
    }
  EXPECT_NEAR(double(kept) / ones.size(), 0.5, 0.02);
  // y = x * mask, also for the backward use on dy.
  auto x = random_vec(ones.size(), 32);
  std::vector<float> y(ones.size());
  be->dropout_apply(key, x.data(), y.data(), rows, cols);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], x[i] * m1[i]);
}

TEST(Loss, RowMaxSumexpPickTargetAndBackward) {
  auto be = make_cpu_backend();
  const int rows = 37, cols = 600, col0 = 1000;  // a class shard [1000, 1600)
  auto logits = random_vec(size_t(rows) * cols, 40, -5.f, 5.f);
  std::vector<int32_t> labels(rows);
  for (int r = 0; r < rows; ++r) labels[r] = r % 3 == 0 ? 5 + r : col0 + (r * 37) % cols;
  std::vector<float> mx(rows), se(rows), tgt(rows), d(logits.size());
  be->row_max(logits.data(), rows, cols, mx.data());
  be->row_sumexp(logits.data(), mx.data(), rows, cols, se.data());
  be->pick_target(logits.data(), labels.data(), rows, cols, col0, tgt.data());
  const float scale = 1.f / 128;
  be->xent_backward(logits.data(), mx.data(), se.data(), labels.data(), rows, cols, col0, scale,
                    d.data());
  std::vector<double> want_mx(rows), want_se(rows), want_tgt(rows);
  std::vector<float> want_d(d.size());
  for (int r = 0; r < rows; ++r) {
    const float* l = logits.data() + size_t(r) * cols;
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (int c = 0; c < cols; ++c) m = std::max(m, double(l[c]));
    for (int c = 0; c < cols; ++c) s += std::exp(double(l[c]) - m);
    want_mx[r] = m;
    want_se[r] = s;
    int t = labels[r] - col0;
    want_tgt[r] = (t >= 0 && t < cols) ? l[t] : 0.0;
    for (int c = 0; c < cols; ++c)
      want_d[size_t(r) * cols + c] = xent_grad_one(l[c], mx[r], se[r], c == t, scale);
  }
  EXPECT_TRUE(all_near(mx, want_mx, 0.0));
  EXPECT_TRUE(all_near(se, want_se, 0.0, 1e-5));
  EXPECT_TRUE(all_near(tgt, want_tgt, 0.0));
  EXPECT_TRUE(all_near(d, want_d, 1e-9, 1e-6));
  // The gradient is softmax - onehot: each row with its target here sums to ~0.
  for (int r = 1; r < rows; r += 3) {
    double s = 0;
    for (int c = 0; c < cols; ++c) s += d[size_t(r) * cols + c];
    EXPECT_NEAR(s, 0.0, 1e-6);
  }
}

TEST(Optimizer, SgdUpdateMatchesFormula) {
  auto be = make_cpu_backend();
  auto w = random_vec(kBig, 50), g = random_vec(kBig, 51), v = random_vec(kBig, 52);
  SgdStep step{0.05f, 0.9f, 5e-4f};
  std::vector<float> want_w(w), want_v(v);
  for (size_t i = 0; i < kBig; ++i) {  // g' = g + wd w; v = mu v + g'; w -= lr v
    float gw = g[i] + step.weight_decay * want_w[i];
    want_v[i] = step.momentum * want_v[i] + gw;
    want_w[i] -= step.lr * want_v[i];
  }
  be->sgd_update(step, w.data(), g.data(), v.data(), kBig);
  EXPECT_TRUE(all_near(v, std::vector<double>(want_v.begin(), want_v.end()), 1e-6));
  EXPECT_TRUE(all_near(w, std::vector<double>(want_w.begin(), want_w.end()), 1e-6));
}

}  // namespace
}  // namespace owt
