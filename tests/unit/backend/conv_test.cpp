// Convolution forward, backward-data and backward-filter (which accumulates) of the backend
// and of both CPU engines it dispatches to (oneDNN, im2col + sgemm) against naive double
// loops on random geometries: stride, padding, non-square kernels, AlexNet's 11x11 stride 4;
// and the bf16 backend against the same loops on operands rounded to bfloat16.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "../../../src/backend/cpu/cpu_conv.h"
#include "backend_test_util.h"
#include "owt/backend/backend.h"

namespace owt {
namespace {

using test::all_near;
using test::random_vec;
using test::rounded_bf16;

ConvGeom make_geom(int n, int c, int h, int w, int k, int kh, int kw, int sh, int sw, int ph,
                   int pw) {
  return ConvGeom{n, c, h, w, k, kh, kw, sh, sw, ph, pw, (h + 2 * ph - kh) / sh + 1,
                  (w + 2 * pw - kw) / sw + 1};
}

size_t x_size(const ConvGeom& g) { return size_t(g.n) * g.c * g.h * g.w; }
size_t w_size(const ConvGeom& g) { return size_t(g.k) * g.c * g.kh * g.kw; }
size_t y_size(const ConvGeom& g) { return size_t(g.n) * g.k * g.oh * g.ow; }

// Calls f(n, k, oh, ow, c, i, j, x_index, w_index) for every (output, tap) pair that reads
// an input pixel inside the image.
template <typename F>
void for_each_tap(const ConvGeom& g, F f) {
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int oh = 0; oh < g.oh; ++oh)
        for (int ow = 0; ow < g.ow; ++ow)
          for (int c = 0; c < g.c; ++c)
            for (int i = 0; i < g.kh; ++i)
              for (int j = 0; j < g.kw; ++j) {
                int ih = oh * g.stride_h - g.pad_h + i, iw = ow * g.stride_w - g.pad_w + j;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                size_t xi = ((size_t(n) * g.c + c) * g.h + ih) * g.w + iw;
                size_t wi = ((size_t(k) * g.c + c) * g.kh + i) * g.kw + j;
                size_t yi = ((size_t(n) * g.k + k) * g.oh + oh) * g.ow + ow;
                f(xi, wi, yi, k);
              }
}

std::vector<double> ref_forward(const ConvGeom& g, const std::vector<float>& x,
                                const std::vector<float>& w, const std::vector<float>& b) {
  std::vector<double> y(y_size(g));
  for (size_t i = 0; i < y.size(); ++i) y[i] = b[(i / (size_t(g.oh) * g.ow)) % g.k];
  for_each_tap(g, [&](size_t xi, size_t wi, size_t yi, int) { y[yi] += double(x[xi]) * w[wi]; });
  return y;
}
std::vector<double> ref_backward_data(const ConvGeom& g, const std::vector<float>& dy,
                                      const std::vector<float>& w) {
  std::vector<double> dx(x_size(g), 0.0);
  for_each_tap(g, [&](size_t xi, size_t wi, size_t yi, int) { dx[xi] += double(dy[yi]) * w[wi]; });
  return dx;
}
// dw, db start from the given values: the op accumulates.
void ref_backward_filter(const ConvGeom& g, const std::vector<float>& x,
                         const std::vector<float>& dy, std::vector<double>& dw,
                         std::vector<double>& db) {
  for_each_tap(g, [&](size_t xi, size_t wi, size_t yi, int) { dw[wi] += double(x[xi]) * dy[yi]; });
  for (size_t i = 0; i < y_size(g); ++i) db[(i / (size_t(g.oh) * g.ow)) % g.k] += dy[i];
}

double tol(const std::vector<double>& ref) {
  double m = 0;
  for (double v : ref) m = std::max(m, std::fabs(v));
  return 2e-5 * (1.0 + m);
}

struct Engine {
  std::string name;
  std::function<void(const ConvGeom&, const float*, const float*, const float*, float*)> fwd;
  std::function<void(const ConvGeom&, const float*, const float*, float*)> bwd_data;
  std::function<void(const ConvGeom&, const float*, const float*, float*, float*)> bwd_filter;
};

std::vector<Engine> engines() {
  auto backend = std::shared_ptr<Backend>(make_cpu_backend());
  auto im2col = std::make_shared<Im2colConv>();
  auto dnnl = std::make_shared<DnnlConv>();
  return {
      {"backend",
       [=](auto& g, auto x, auto w, auto b, auto y) { backend->conv2d_forward(g, x, w, b, y); },
       [=](auto& g, auto dy, auto w, auto dx) { backend->conv2d_backward_data(g, dy, w, dx); },
       [=](auto& g, auto x, auto dy, auto dw, auto db) {
         backend->conv2d_backward_filter(g, x, dy, dw, db);
       }},
      {"im2col", [=](auto& g, auto x, auto w, auto b, auto y) { im2col->forward(g, x, w, b, y); },
       [=](auto& g, auto dy, auto w, auto dx) { im2col->backward_data(g, dy, w, dx); },
       [=](auto& g, auto x, auto dy, auto dw, auto db) {
         im2col->backward_filter(g, x, dy, dw, db);
       }},
      {"onednn", [=](auto& g, auto x, auto w, auto b, auto y) { dnnl->forward(g, x, w, b, y); },
       [=](auto& g, auto dy, auto w, auto dx) { dnnl->backward_data(g, dy, w, dx); },
       [=](auto& g, auto x, auto dy, auto dw, auto db) {
         dnnl->backward_filter(g, x, dy, dw, db);
       }},
  };
}

std::vector<ConvGeom> geometries() {
  return {
      make_geom(2, 3, 9, 7, 4, 3, 2, 1, 1, 1, 0),      // non-square kernel, uneven padding
      make_geom(3, 3, 23, 23, 5, 11, 11, 4, 4, 2, 2),  // AlexNet conv1 style
      make_geom(3, 2, 8, 10, 3, 5, 5, 2, 1, 2, 1),     // different strides per axis
      make_geom(5, 4, 8, 8, 6, 3, 3, 2, 2, 0, 0),      // floor drops the last input row/col
      make_geom(1, 6, 6, 5, 7, 1, 1, 1, 1, 0, 0),      // 1x1, single image
      make_geom(4, 8, 12, 12, 16, 5, 5, 1, 1, 2, 2),   // fmnist conv2 style
  };
}

std::string geom_str(const ConvGeom& g) {
  return cat("N", g.n, " C", g.c, " ", g.h, "x", g.w, " K", g.k, " ", g.kh, "x", g.kw, " s",
             g.stride_h, "x", g.stride_w, " p", g.pad_h, "x", g.pad_w);
}

TEST(Conv, ForwardMatchesNaive) {
  uint32_t seed = 1;
  for (const Engine& e : engines())
    for (const ConvGeom& g : geometries()) {
      SCOPED_TRACE(e.name + " " + geom_str(g));
      auto x = random_vec(x_size(g), seed++), w = random_vec(w_size(g), seed++),
           b = random_vec(g.k, seed++);
      std::vector<float> y(y_size(g), 123.f);
      e.fwd(g, x.data(), w.data(), b.data(), y.data());
      auto ref = ref_forward(g, x, w, b);
      EXPECT_TRUE(all_near(y, ref, tol(ref)));
      // Same geometry again (cached primitives), new data.
      x = random_vec(x_size(g), seed++);
      e.fwd(g, x.data(), w.data(), b.data(), y.data());
      ref = ref_forward(g, x, w, b);
      EXPECT_TRUE(all_near(y, ref, tol(ref)));
    }
}

TEST(Conv, BackwardDataMatchesNaive) {
  uint32_t seed = 100;
  for (const Engine& e : engines())
    for (const ConvGeom& g : geometries()) {
      SCOPED_TRACE(e.name + " " + geom_str(g));
      auto dy = random_vec(y_size(g), seed++), w = random_vec(w_size(g), seed++);
      std::vector<float> dx(x_size(g), 123.f);  // overwritten, not accumulated
      e.bwd_data(g, dy.data(), w.data(), dx.data());
      auto ref = ref_backward_data(g, dy, w);
      EXPECT_TRUE(all_near(dx, ref, tol(ref)));
    }
}

TEST(Conv, BackwardFilterAccumulatesNaive) {
  uint32_t seed = 200;
  for (const Engine& e : engines())
    for (const ConvGeom& g : geometries()) {
      SCOPED_TRACE(e.name + " " + geom_str(g));
      auto x = random_vec(x_size(g), seed++), dy = random_vec(y_size(g), seed++);
      auto dw = random_vec(w_size(g), seed++), db = random_vec(g.k, seed++);
      std::vector<double> ref_dw(dw.begin(), dw.end()), ref_db(db.begin(), db.end());
      // Twice: the second call must add to the first.
      for (int rep = 0; rep < 2; ++rep) {
        e.bwd_filter(g, x.data(), dy.data(), dw.data(), db.data());
        ref_backward_filter(g, x, dy, ref_dw, ref_db);
      }
      EXPECT_TRUE(all_near(dw, ref_dw, tol(ref_dw)));
      EXPECT_TRUE(all_near(db, ref_db, tol(ref_db)));
    }
}

TEST(Conv, NullBiasAndNullDbAreAllowed) {
  ConvGeom g = make_geom(2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1);
  auto x = random_vec(x_size(g), 7), w = random_vec(w_size(g), 8), dy = random_vec(y_size(g), 9);
  std::vector<float> zero(g.k, 0.f);
  for (const Engine& e : engines()) {
    SCOPED_TRACE(e.name);
    std::vector<float> y(y_size(g));
    e.fwd(g, x.data(), w.data(), nullptr, y.data());
    EXPECT_TRUE(all_near(y, ref_forward(g, x, w, zero), 1e-4));
    std::vector<float> dw(w_size(g), 0.f);
    e.bwd_filter(g, x.data(), dy.data(), dw.data(), nullptr);
    std::vector<double> ref_dw(w_size(g), 0.0), ref_db(g.k, 0.0);
    ref_backward_filter(g, x, dy, ref_dw, ref_db);
    EXPECT_TRUE(all_near(dw, ref_dw, tol(ref_dw)));
  }
}

// precision bf16: x, w and dy are rounded to bfloat16, products accumulate in fp32. The
// reference rounds the same operands and sums in double, so only fp32 accumulation error is
// left (tol); against the unrounded reference the error is ~100x larger, which shows the
// rounding happens (the first layer's backward-data stays fp32 on the im2col engine).
TEST(Conv, Bf16RoundsOperandsAndAccumulatesInFp32) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU (oneDNN's view)";
  auto be = make_cpu_backend("bf16");
  uint32_t seed = 300;
  for (const ConvGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = random_vec(x_size(g), seed++), w = random_vec(w_size(g), seed++),
         b = random_vec(g.k, seed++), dy = random_vec(y_size(g), seed++);
    const auto xr = rounded_bf16(x), wr = rounded_bf16(w), dyr = rounded_bf16(dy);
    std::vector<float> y(y_size(g)), dx(x_size(g)), dw(w_size(g), 0.f), db(g.k, 0.f);
    for (int rep = 0; rep < 2; ++rep) be->conv2d_forward(g, x.data(), w.data(), b.data(), y.data());
    auto ref = ref_forward(g, xr, wr, b);
    EXPECT_TRUE(all_near(y, ref, tol(ref)));
    EXPECT_FALSE(all_near(y, ref_forward(g, x, w, b), tol(ref)));

    be->conv2d_backward_data(g, dy.data(), w.data(), dx.data());
    auto ref_dx = ref_backward_data(g, g.c < 8 ? dy : dyr, g.c < 8 ? w : wr);
    EXPECT_TRUE(all_near(dx, ref_dx, tol(ref_dx)));

    be->conv2d_backward_filter(g, x.data(), dy.data(), dw.data(), db.data());
    std::vector<double> ref_dw(w_size(g), 0.0), ref_db(g.k, 0.0);
    ref_backward_filter(g, xr, dyr, ref_dw, ref_db);
    EXPECT_TRUE(all_near(dw, ref_dw, tol(ref_dw)));
    EXPECT_TRUE(all_near(db, ref_db, tol(ref_db)));  // the sum of dy as rounded (cuDNN alike)
  }
}

TEST(Conv, Bf16IsRefusedWithoutAvx512Bf16) {
  if (cpu_has_bf16()) {
    EXPECT_NE(make_cpu_backend("bf16"), nullptr);
    EXPECT_EQ(make_cpu_backend("bf16")->name(), "cpu-bf16");
  } else {
    try {
      make_cpu_backend("bf16");
      ADD_FAILURE() << "bf16 accepted on a CPU without AVX512_BF16";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs AVX512_BF16"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(make_cpu_backend("fp32-strict")->name(), "cpu");
  EXPECT_THROW(make_cpu_backend("fp16"), Error);
}

}  // namespace
}  // namespace owt
