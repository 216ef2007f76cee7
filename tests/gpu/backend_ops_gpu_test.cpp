// Every Backend op on the CUDA backend against the CPU backend, forward and backward, on fresh
// random inputs: convolution and GEMM in each precision (fp32-strict 1e-5, tf32 3e-3, bf16
// 1e-2, relative to the largest reference magnitude), each convolution twice per shape (the
// second time on the cached algorithm) and with operand views that are not 256-byte aligned;
// every other op once at 1e-5 (their maths is precision-independent); uploads past the staging
// buffer (staged, and from allocate_host's pinned buffers refilled after wait_unused) and a
// grid-stride loop over more than 2^28 elements (GpuLarge: left out of compute-sanitizer's run).
// Skipped without a CUDA device (failed under OWT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include "gpu_test_util.h"

namespace owt::test {
namespace {

class GpuOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    OWT_SKIP_WITHOUT_GPU();
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0, GetParam());
    tol_ = tolerance_for(GetParam());
  }
  // Runs `op` on both backends with the same host inputs; returns {cuda, cpu} outputs.
  std::unique_ptr<Backend> cpu_, gpu_;
  double tol_ = 0;
};

// ---- GEMM ----------------------------------------------------------------------------------

TEST_P(GpuOps, GemmAllTransposesWithBetaAndPadding) {
  const int m = 37, n = 53, k = 71;
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      int lda = (ta == Trans::N ? k : m) + 3, ldb = (tb == Trans::N ? n : k) + 2, ldc = n + 5;
      int a_rows = ta == Trans::N ? m : k, b_rows = tb == Trans::N ? k : n;
      auto a = random_floats(static_cast<size_t>(a_rows) * lda, 1);
      auto b = random_floats(static_cast<size_t>(b_rows) * ldb, 2);
      auto c = random_floats(static_cast<size_t>(m) * ldc, 3);
      std::vector<float> out[2];
      Backend* bs[2] = {gpu_.get(), cpu_.get()};
      for (int i = 0; i < 2; ++i) {
        Tensor ta_ = upload(*bs[i], a), tb_ = upload(*bs[i], b), tc = upload(*bs[i], c);
        bs[i]->gemm(ta, tb, m, n, k, 0.75f, ta_.f32(), lda, tb_.f32(), ldb, 0.5f, tc.f32(), ldc);
        out[i] = download(*bs[i], tc, c.size());
      }
      EXPECT_TRUE(near_rel(out[0], out[1], tol_)) << "ta " << int(ta) << " tb " << int(tb);
    }
}

TEST_P(GpuOps, GemmWithEmptyInnerDimensionScalesC) {
  auto c = random_floats(6 * 4, 4);
  Tensor tc = upload(*gpu_, c);
  gpu_->gemm(Trans::N, Trans::N, 6, 4, 0, 1.f, tc.f32(), 1, tc.f32(), 1, 0.5f, tc.f32(), 4);
  auto got = download(*gpu_, tc, c.size());
  for (auto& v : c) v *= 0.5f;
  EXPECT_TRUE(near_rel(got, c, 1e-7));
}

// ---- convolution -----------------------------------------------------------------------------

struct ConvCase {
  ConvGeom g;
  bool bias;
};

ConvGeom conv_geom(int n, int c, int h, int w, int k, int ks, int stride, int pad) {
  ConvGeom g{n, c, h, w, k, ks, ks, stride, stride, pad, pad, 0, 0};
  g.oh = (h + 2 * pad - ks) / stride + 1;
  g.ow = (w + 2 * pad - ks) / stride + 1;
  return g;
}

struct ConvOutputs {
  std::vector<float> y, dx, dw, db;
};

// Forward, backward-data and backward-filter of `cc` on `b`, with the weight and its gradient
// `offset` floats into their buffers (offset 1: 4-byte aligned views, as any tensor view that is
// not a whole parameter may be). backward_filter accumulates into dw0 and db0.
ConvOutputs run_conv(Backend& b, const ConvCase& cc, const std::vector<float>& x,
                     const std::vector<float>& w, const std::vector<float>& bias,
                     const std::vector<float>& dy, const std::vector<float>& dw0,
                     const std::vector<float>& db0, int offset) {
  const ConvGeom& g = cc.g;
  size_t nx = x.size(), nw = w.size(), ny = dy.size();
  auto shifted = [&](const std::vector<float>& v) {
    std::vector<float> out(offset, 0.f);
    out.insert(out.end(), v.begin(), v.end());
    return out;
  };
  Tensor tx = upload(b, x), tw = upload(b, shifted(w)), tb = upload(b, bias), tdy = upload(b, dy);
  Tensor ty = b.empty(Shape{int64_t(ny)}), tdx = b.empty(Shape{int64_t(nx)});
  Tensor tdw = upload(b, shifted(dw0)), tdb = upload(b, db0);
  const float* wp = tw.f32() + offset;
  float* dwp = tdw.f32() + offset;
  b.conv2d_forward(g, tx.f32(), wp, cc.bias ? tb.f32() : nullptr, ty.f32());
  b.conv2d_backward_filter(g, tx.f32(), tdy.f32(), dwp, cc.bias ? tdb.f32() : nullptr);
  b.conv2d_backward_data(g, tdy.f32(), wp, tdx.f32());  // the layer's order: filter, then data
  ConvOutputs o;
  o.y = download(b, ty, ny), o.dx = download(b, tdx, nx), o.db = download(b, tdb, g.k);
  std::vector<float> dw = download(b, tdw, nw + offset);
  o.dw.assign(dw.begin() + offset, dw.end());
  return o;
}

TEST_P(GpuOps, ConvolutionForwardBackwardDataAndFilter) {
  const ConvCase cases[] = {
      {conv_geom(2, 3, 23, 23, 8, 11, 4, 2), true},   // AlexNet conv1-like, RGB input
      {conv_geom(3, 16, 9, 9, 12, 5, 1, 2), true},    // padded 5x5
      {conv_geom(2, 8, 7, 6, 4, 3, 2, 1), false},     // strided, non-square, no bias
      {conv_geom(4, 32, 5, 5, 16, 1, 1, 0), true},    // 1x1
      {conv_geom(8, 4, 64, 64, 8, 3, 1, 1), true},    // bias gradient over 8 parts per channel
  };
  for (const ConvCase& cc : cases) {
    const ConvGeom& g = cc.g;
    size_t nx = size_t(g.n) * g.c * g.h * g.w, nw = size_t(g.k) * g.c * g.kh * g.kw,
           ny = size_t(g.n) * g.k * g.oh * g.ow;
    auto x = random_floats(nx, 10), w = random_floats(nw, 11), bias = random_floats(g.k, 12);
    auto dy = random_floats(ny, 13), dw0 = random_floats(nw, 14), db0 = random_floats(g.k, 15);
    const ConvOutputs want = run_conv(*cpu_, cc, x, w, bias, dy, dw0, db0, 0);
    // Twice aligned (the second run on the algorithms found by the first), then on views one
    // float into their buffers (staged through aligned scratch in fp32, copied in bf16).
    for (int round = 0; round < 3; ++round) {
      const int offset = round == 2 ? 1 : 0;
      const ConvOutputs got = run_conv(*gpu_, cc, x, w, bias, dy, dw0, db0, offset);
      std::string what = "conv c=" + std::to_string(g.c) + " k=" + std::to_string(g.k) +
                         " ks=" + std::to_string(g.kh) + " n=" + std::to_string(g.n) +
                         " round " + std::to_string(round);
      EXPECT_TRUE(near_rel(got.y, want.y, tol_)) << what << " forward";
      EXPECT_TRUE(near_rel(got.dx, want.dx, tol_)) << what << " backward data";
      EXPECT_TRUE(near_rel(got.dw, want.dw, tol_)) << what << " backward filter";
      // db is an fp32 reduction of dy in every precision.
      EXPECT_TRUE(near_rel(got.db, want.db, 1e-5)) << what << " bias gradient";
    }
  }
}

// bf16 keeps a copy of each conv operand while its source is unchanged: every op that writes
// the source (an upload, the SGD update, an elementwise op in place) must make the next
// convolution read the new values. Meaningful in bf16; cheap in the others.
TEST_P(GpuOps, ConvolutionsReadTheirOperandsAfterEveryWrite) {
  const ConvGeom g = conv_geom(2, 6, 12, 12, 8, 3, 1, 1);
  size_t nx = size_t(g.n) * g.c * g.h * g.w, nw = size_t(g.k) * g.c * g.kh * g.kw,
         ny = size_t(g.n) * g.k * g.oh * g.ow;
  const auto x1 = random_floats(nx, 80), x2 = random_floats(nx, 81), w = random_floats(nw, 82);
  const auto dy = random_floats(ny, 83), grad = random_floats(nw, 84);
  std::vector<float> dw[2], dx[2], dw2[2], y[2];
  Backend* bs[2] = {gpu_.get(), cpu_.get()};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor tx = upload(b, x1), tw = upload(b, w), tdy = upload(b, dy), tg = upload(b, grad);
    Tensor tv = upload(b, std::vector<float>(nw, 0.f)), ty = b.empty(Shape{int64_t(ny)});
    Tensor tdw = upload(b, std::vector<float>(nw, 0.f)), tdx = b.empty(Shape{int64_t(nx)});
    b.conv2d_forward(g, tx.f32(), tw.f32(), nullptr, ty.f32());       // copies of x1 and w
    b.from_host(x2.data(), tx.f32(), nx * sizeof(float));              // x := x2
    b.conv2d_backward_filter(g, tx.f32(), tdy.f32(), tdw.f32(), nullptr);
    b.sgd_update(SgdStep{0.5f, 0.9f, 0.f}, tw.f32(), tg.f32(), tv.f32(), nw);  // w changes
    b.conv2d_backward_data(g, tdy.f32(), tw.f32(), tdx.f32());
    b.relu_forward(tdy.f32(), tdy.f32(), ny);                          // dy changes in place
    Tensor tdw2 = upload(b, std::vector<float>(nw, 0.f));
    b.conv2d_backward_filter(g, tx.f32(), tdy.f32(), tdw2.f32(), nullptr);
    b.conv2d_forward(g, tx.f32(), tw.f32(), nullptr, ty.f32());
    dw[i] = download(b, tdw, nw), dx[i] = download(b, tdx, nx), dw2[i] = download(b, tdw2, nw);
    y[i] = download(b, ty, ny);
  }
  EXPECT_TRUE(near_rel(dw[0], dw[1], tol_)) << "backward filter after an upload into x";
  EXPECT_TRUE(near_rel(dx[0], dx[1], tol_)) << "backward data after the SGD update of w";
  EXPECT_TRUE(near_rel(dw2[0], dw2[1], tol_)) << "backward filter after relu wrote dy";
  EXPECT_TRUE(near_rel(y[0], y[1], tol_)) << "forward on the new x and w";
}

INSTANTIATE_TEST_SUITE_P(Precisions, GpuOps, ::testing::Values("fp32-strict", "tf32", "bf16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

// ---- precision-independent ops, fp32-strict, 1e-5 --------------------------------------------

// One CUDA backend for the whole suite (SharedCudaBackendTest). The allocator tests make their
// own, to see a fresh pool.
class GpuExact : public SharedCudaBackendTest<GpuExact> {};

TEST_F(GpuExact, CopiesFillScaleAxpy) {
  const size_t n = 100003;
  auto x = random_floats(n, 20), y = random_floats(n, 21);
  std::vector<float> out[2], filled[2];
  for (int i = 0; i < 2; ++i) {
    Backend& b = *both(i);
    Tensor tx = upload(b, x), ty = upload(b, y), tz = b.empty(Shape{int64_t(n)});
    b.copy(tx.f32(), tz.f32(), n * sizeof(float));
    b.scale(tz.f32(), n, -1.5f);
    b.axpy(0.25f, ty.f32(), tz.f32(), n);
    out[i] = download(b, tz, n);
    b.fill(ty.f32(), n, 3.25f);
    filled[i] = download(b, ty, n);
  }
  EXPECT_TRUE(near_rel(out[0], out[1], 1e-6));
  EXPECT_EQ(filled[0], filled[1]);
}

TEST_F(GpuExact, DenseHelpers) {
  const int rows = 67, cols = 301;
  auto x = random_floats(size_t(rows) * cols, 22), v = random_floats(cols, 23),
       acc = random_floats(cols, 24);
  auto dst0 = random_floats(size_t(rows) * 40, 25);
  std::vector<float> added[2], sums[2], cols_out[2];
  for (int i = 0; i < 2; ++i) {
    Backend& b = *both(i);
    Tensor tx = upload(b, x), tv = upload(b, v), tacc = upload(b, acc), td = upload(b, dst0);
    b.sum_rows(tx.f32(), tacc.f32(), rows, cols);
    b.add_row_vector(tx.f32(), tv.f32(), rows, cols);
    b.copy_columns(tx.f32(), cols, 17, td.f32(), 40, 5, rows, 30);
    added[i] = download(b, tx, x.size());
    sums[i] = download(b, tacc, cols);
    cols_out[i] = download(b, td, dst0.size());
  }
  EXPECT_TRUE(near_rel(added[0], added[1], 1e-6));
  EXPECT_TRUE(near_rel(sums[0], sums[1], 1e-5));
  EXPECT_EQ(cols_out[0], cols_out[1]);
}

PoolGeom pool_geom(int n, int c, int h, int w, int size, int stride, int pad, bool ceil_mode) {
  auto out = [&](int in) {
    int span = in + 2 * pad - size;
    int o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad) --o;  // PyTorch: the last window starts inside
    return o;
  };
  return PoolGeom{n, c, h, w, size, stride, pad, out(h), out(w)};
}

TEST_F(GpuExact, MaxAndAveragePoolingForwardBackward) {
  const PoolGeom cases[] = {pool_geom(2, 5, 13, 13, 3, 2, 0, false),  // AlexNet overlapping
                            pool_geom(2, 3, 11, 10, 3, 2, 1, true),   // padded, ceil mode
                            pool_geom(1, 4, 8, 8, 2, 2, 0, false)};
  for (const PoolGeom& g : cases) {
    size_t nx = size_t(g.n) * g.c * g.h * g.w, ny = size_t(g.n) * g.c * g.oh * g.ow;
    auto x = random_floats(nx, 30), dy = random_floats(ny, 31);
    x[5] = x[6];  // a tie: the first maximum must win on both
    std::vector<float> y[2], dx[2], ay[2], adx[2];
    std::vector<int32_t> arg[2];
    for (int i = 0; i < 2; ++i) {
      Backend& b = *both(i);
      Tensor tx = upload(b, x), tdy = upload(b, dy), ty = b.empty(Shape{int64_t(ny)}),
             ta = b.empty(Shape{int64_t(ny)}, DType::I32), tdx = b.empty(Shape{int64_t(nx)});
      b.maxpool_forward(g, tx.f32(), ty.f32(), ta.i32());
      b.maxpool_backward(g, tdy.f32(), ta.i32(), tdx.f32());
      y[i] = download(b, ty, ny), arg[i] = download_i32(b, ta, ny), dx[i] = download(b, tdx, nx);
      b.avgpool_forward(g, tx.f32(), ty.f32());
      b.avgpool_backward(g, tdy.f32(), tdx.f32());
      ay[i] = download(b, ty, ny), adx[i] = download(b, tdx, nx);
    }
    EXPECT_EQ(arg[0], arg[1]) << "argmax";
    EXPECT_TRUE(near_rel(y[0], y[1], 0)) << "max forward";
    EXPECT_TRUE(near_rel(dx[0], dx[1], 1e-6)) << "max backward";
    EXPECT_TRUE(near_rel(ay[0], ay[1], 1e-6)) << "avg forward";
    EXPECT_TRUE(near_rel(adx[0], adx[1], 1e-6)) << "avg backward";
  }
}

TEST_F(GpuExact, LocalResponseNormalisationForwardBackward) {
  const LrnGeom cases[] = {{2, 11, 6, 7, 5, 1e-4f * 5, 0.75f, 2.f},   // AlexNet (odd window)
                           {2, 6, 3, 5, 4, 0.3f, 0.6f, 1.f}};         // even window, other beta
  for (const LrnGeom& g : cases) {
    size_t n = size_t(g.n) * g.c * g.h * g.w;
    auto x = random_floats(n, 40, -3.f, 3.f), dy = random_floats(n, 41);
    std::vector<float> scale[2], y[2], dx[2];
    for (int i = 0; i < 2; ++i) {
      Backend& b = *both(i);
      Tensor tx = upload(b, x), tdy = upload(b, dy), ts = b.empty(Shape{int64_t(n)}),
             ty = b.empty(Shape{int64_t(n)}), tdx = b.empty(Shape{int64_t(n)});
      b.lrn_forward(g, tx.f32(), ts.f32(), ty.f32());
      b.lrn_backward(g, tx.f32(), ty.f32(), ts.f32(), tdy.f32(), tdx.f32());
      scale[i] = download(b, ts, n), y[i] = download(b, ty, n), dx[i] = download(b, tdx, n);
    }
    EXPECT_TRUE(near_rel(scale[0], scale[1], 1e-5)) << "size " << g.size;
    EXPECT_TRUE(near_rel(y[0], y[1], 1e-5)) << "size " << g.size;
    EXPECT_TRUE(near_rel(dx[0], dx[1], 1e-5)) << "size " << g.size;
  }
}

TEST_F(GpuExact, ReluDropoutAndSgd) {
  const int rows = 33, cols = 257;
  const size_t n = size_t(rows) * cols;
  auto x = random_floats(n, 50), dy = random_floats(n, 51), w = random_floats(n, 52),
       v = random_floats(n, 53);
  DropoutKey key{rng_key(99, Purpose::Dropout), name_hash("drop"), 7, 1000, 64, 0.4f};
  SgdStep step{0.05f, 0.9f, 5e-4f};
  std::vector<float> y[2], dx[2], d[2], wo[2], vo[2];
  for (int i = 0; i < 2; ++i) {
    Backend& b = *both(i);
    Tensor tx = upload(b, x), tdy = upload(b, dy), tw = upload(b, w), tv = upload(b, v),
           ty = b.empty(Shape{int64_t(n)}), tdx = b.empty(Shape{int64_t(n)}),
           td = b.empty(Shape{int64_t(n)});
    b.relu_forward(tx.f32(), ty.f32(), n);
    b.relu_backward(ty.f32(), tdy.f32(), tdx.f32(), n);
    b.dropout_apply(key, tx.f32(), td.f32(), rows, cols);
    for (int t = 0; t < 3; ++t) b.sgd_update(step, tw.f32(), tdy.f32(), tv.f32(), n);  // momentum
    y[i] = download(b, ty, n), dx[i] = download(b, tdx, n), d[i] = download(b, td, n);
    wo[i] = download(b, tw, n), vo[i] = download(b, tv, n);
  }
  EXPECT_EQ(y[0], y[1]);
  EXPECT_EQ(dx[0], dx[1]);
  EXPECT_TRUE(near_rel(d[0], d[1], 1e-6)) << "dropout: same Philox mask on both";
  EXPECT_TRUE(near_rel(wo[0], wo[1], 1e-6));
  EXPECT_TRUE(near_rel(vo[0], vo[1], 1e-6));
}

TEST_F(GpuExact, LossPieces) {
  const int rows = 29, cols = 1000, col0 = 500;
  auto logits = random_floats(size_t(rows) * cols, 60, -8.f, 8.f);
  std::vector<int32_t> labels(rows);
  for (int r = 0; r < rows; ++r) labels[r] = (r * 97) % 2000;  // in and out of [500, 1500)
  std::vector<float> mx[2], se[2], tg[2], dl[2], sums[2], smooth[2];
  for (int i = 0; i < 2; ++i) {
    Backend& b = *both(i);
    Tensor tl = upload(b, logits), tlab = upload_i32(b, labels), tm = b.empty(Shape{rows}),
           ts = b.empty(Shape{rows}), tt = b.empty(Shape{rows}), tz = b.empty(Shape{rows}),
           td = b.empty(Shape{int64_t(logits.size())}), td2 = b.empty(Shape{int64_t(logits.size())});
    b.row_max(tl.f32(), rows, cols, tm.f32());
    b.row_sumexp(tl.f32(), tm.f32(), rows, cols, ts.f32());
    b.pick_target(tl.f32(), tlab.i32(), rows, cols, col0, tt.f32());
    b.xent_backward(tl.f32(), tm.f32(), ts.f32(), tlab.i32(), rows, cols, col0, 1.f / 64, td.f32());
    // Label smoothing's pieces: the row sums of the logits and the smoothed gradient (eps 0.1
    // over 2000 classes in all).
    b.row_sum(tl.f32(), rows, cols, tz.f32());
    b.xent_backward(tl.f32(), tm.f32(), ts.f32(), tlab.i32(), rows, cols, col0,
                    XentGrad(1.f / 64, 0.1f, 2000), td2.f32());
    mx[i] = download(b, tm, rows), se[i] = download(b, ts, rows), tg[i] = download(b, tt, rows);
    dl[i] = download(b, td, logits.size());
    sums[i] = download(b, tz, rows), smooth[i] = download(b, td2, logits.size());
  }
  EXPECT_EQ(mx[0], mx[1]);
  EXPECT_TRUE(near_rel(se[0], se[1], 1e-5));
  EXPECT_EQ(tg[0], tg[1]);
  EXPECT_TRUE(near_rel(dl[0], dl[1], 1e-5));
  EXPECT_TRUE(near_rel(sums[0], sums[1], 1e-5));
  EXPECT_TRUE(near_rel(smooth[0], smooth[1], 1e-5));
}

TEST_F(GpuExact, AllocatorReusesBlocksAndTracksPeak) {
  auto fresh = make_cuda_backend(0, "fp32-strict");  // a pool of its own
  cuda_reset_peak_memory(*fresh);
  CudaMemoryStats before = cuda_memory_stats(*fresh);
  void* first = nullptr;
  {
    Tensor t = fresh->empty(Shape{1 << 20});
    first = t.f32();
  }
  Tensor again = fresh->empty(Shape{1 << 20});
  EXPECT_EQ(again.f32(), first) << "a freed block of the same size is reused";
  CudaMemoryStats after = cuda_memory_stats(*fresh);
  EXPECT_GE(after.peak_in_use, before.in_use + (4u << 20));
  EXPECT_GE(after.reserved, after.in_use);
}

TEST_F(GpuExact, AllocatorGivesFreedLargerBlocksToSmallerRequests) {
  auto fresh = make_cuda_backend(0, "fp32-strict");  // a pool of its own
  void* first = nullptr;
  {
    Tensor t = fresh->empty(Shape{3 << 18});  // 3 MiB
    first = t.f32();
  }
  CudaMemoryStats before = cuda_memory_stats(*fresh);
  Tensor smaller = fresh->empty(Shape{5 << 17});  // 2.5 MiB: takes the free 3 MiB block
  EXPECT_EQ(smaller.f32(), first);
  EXPECT_EQ(cuda_memory_stats(*fresh).reserved, before.reserved) << "no new cudaMalloc";
}

// Sizes far past the elementwise kernels' grid (2^20 blocks of 256 threads = 2^28) and past
// the pinned staging buffer (256 MiB): slow under compute-sanitizer, so not in GpuExact.
class GpuLarge : public GpuExact {};

TEST_F(GpuLarge, UploadsLargerThanTheStagingBuffer) {
  for (size_t n : {size_t{1} << 18, size_t{3} << 18, size_t{70} << 20}) {  // 1, 3, 280 MiB
    std::vector<float> host(n);
    for (size_t i = 0; i < n; ++i) host[i] = static_cast<float>(i % 1000003);
    Tensor t = gpu_->empty(Shape{int64_t(n)});
    gpu_->from_host(host.data(), t.f32(), n * sizeof(float));
    std::vector<float> back(n);
    gpu_->to_host(t.f32(), back.data(), n * sizeof(float));
    EXPECT_EQ(back, host) << n << " floats";
  }
}

// allocate_host's page-locked buffer, past the staging limit: upload reads it on the stream
// after the call returns (queued here behind a second of kernels), so the host refills it only
// after wait_unused; both uploads (one at an offset) come back exactly.
TEST_F(GpuLarge, UploadsFromPinnedHostBuffersAndRefillsAfterWaitUnused) {
  const size_t n = size_t{70} << 20;  // 280 MiB
  std::shared_ptr<HostBuffer> host = gpu_->allocate_host(n * sizeof(float));
  ASSERT_GE(host->bytes(), n * sizeof(float));
  float* h = host->f32();
  for (size_t i = 0; i < n; ++i) h[i] = static_cast<float>(i % 1000003);
  Tensor busy = gpu_->empty(Shape{int64_t{1} << 28});
  for (int k = 0; k < 200; ++k) gpu_->fill(busy.f32(), size_t{1} << 28, 1.f);  // a busy stream
  Tensor t = gpu_->empty(Shape{int64_t(n)});
  gpu_->upload(*host, 0, t.f32(), n * sizeof(float));
  host->wait_unused();  // the copy above has read every byte
  for (size_t i = 0; i < n; ++i) h[i] = -static_cast<float>(i % 999983);
  std::vector<float> back(n);
  gpu_->to_host(t.f32(), back.data(), n * sizeof(float));
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) wrong += back[i] != static_cast<float>(i % 1000003);
  EXPECT_EQ(wrong, 0u) << "the first upload saw the refill";

  // Refilled: floats [1000, n) go to the start of t; its last 1000 floats keep the first upload.
  gpu_->upload(*host, 1000 * sizeof(float), t.f32(), (n - 1000) * sizeof(float));
  gpu_->to_host(t.f32(), back.data(), n * sizeof(float));
  host->wait_unused();
  wrong = 0;
  for (size_t i = 0; i < n; ++i)
    wrong += back[i] != (i < n - 1000 ? -static_cast<float>((i + 1000) % 999983)
                                      : static_cast<float>(i % 1000003));
  EXPECT_EQ(wrong, 0u) << "the refilled upload";
  EXPECT_THROW(gpu_->upload(*host, 8, t.f32(), n * sizeof(float)), Error);
}

// Small uploads (also under compute-sanitizer): from the backend's pinned buffer, free to
// refill after wait_unused, and from plain memory (not the backend's own, so staged like
// from_host), free to refill as soon as upload returns.
TEST_F(GpuExact, UploadsFromPinnedAndPlainHostBuffers) {
  const size_t n = 100003;
  const std::vector<float> x = random_floats(n, 30);
  for (bool pinned : {true, false}) {
    std::shared_ptr<HostBuffer> host =
        pinned ? gpu_->allocate_host(n * sizeof(float)) : allocate_aligned_host(n * sizeof(float));
    std::memcpy(host->data(), x.data(), n * sizeof(float));
    Tensor t = gpu_->empty(Shape{int64_t(n)});
    gpu_->upload(*host, 0, t.f32(), n * sizeof(float));
    if (pinned) host->wait_unused();
    std::memset(host->data(), 0, n * sizeof(float));
    EXPECT_EQ(download(*gpu_, t, n), x) << (pinned ? "pinned" : "plain");
  }
}

TEST_F(GpuLarge, GridStrideLoopOverMoreThan2To28Elements) {
  const size_t n = (size_t{1} << 28) + (size_t{1} << 20) + 7;  // 1.07 GB of floats
  Tensor t = gpu_->empty(Shape{int64_t(n)});
  gpu_->fill(t.f32(), n, 1.5f);
  gpu_->scale(t.f32(), n, 2.f);
  std::vector<float> back(n);
  gpu_->to_host(t.f32(), back.data(), n * sizeof(float));
  size_t wrong = 0, first_wrong = n;
  for (size_t i = 0; i < n; ++i)
    if (back[i] != 3.f && wrong++ == 0) first_wrong = i;
  EXPECT_EQ(wrong, 0u) << "first wrong element at " << first_wrong;
}

TEST(GpuBackend, FactoryRejectsBadDeviceAndPrecision) {
  OWT_SKIP_WITHOUT_GPU();
  EXPECT_THROW(make_cuda_backend(cuda_device_count(), "tf32"), Error);
  EXPECT_THROW(make_cuda_backend(0, "fp16"), Error);
  auto b = make_cuda_backend(0, "tf32");
  EXPECT_EQ(b->device(), Device::CUDA);
  EXPECT_NE(cuda_stream_of(*b), nullptr);
  auto cpu = make_cpu_backend();
  EXPECT_THROW(cuda_stream_of(*cpu), Error);
}

}  // namespace
}  // namespace owt::test
