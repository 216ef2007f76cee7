// Max and average pooling of the CPU backend against naive double loops (overlapping 3x3/2,
// padding, windows clipped at the border) and their backward passes against central
// differences of the forward op.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "backend_test_util.h"
#include "owt/backend/backend.h"

namespace owt {
namespace {

using test::all_near;
using test::random_vec;

// Output size with Caffe's ceil rule, last window starting inside the (left-padded) input.
PoolGeom make_pool(int n, int c, int h, int w, int size, int stride, int pad, bool ceil_mode) {
  auto out = [&](int in) {
    int span = in + 2 * pad - size;
    int o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && pad > 0 && (o - 1) * stride >= in + pad) --o;
    return o;
  };
  return PoolGeom{n, c, h, w, size, stride, pad, out(h), out(w)};
}

std::vector<PoolGeom> geometries() {
  return {
      make_pool(2, 3, 13, 13, 3, 2, 0, false),  // AlexNet 3x3/2 overlapping, 13 -> 6
      make_pool(2, 2, 28, 28, 2, 2, 0, false),  // fmnist 2x2/2
      make_pool(2, 2, 7, 9, 3, 2, 1, true),     // padded, last window clipped at the border
      make_pool(1, 3, 12, 12, 3, 2, 0, true),   // ceil mode: last window runs past the edge
      make_pool(3, 1, 5, 6, 4, 3, 2, true),     // window larger than stride, big padding
      make_pool(2, 2, 6, 7, 3, 1, 1, false),    // stride 1, padded (the ow-inner path)
      make_pool(1, 2, 9, 10, 2, 2, 0, false),   // 2x2/2 with an odd row left over
      make_pool(2, 3, 14, 14, 2, 2, 0, false),  // fmnist's pool2: 7 outputs, one short chunk
      make_pool(1, 2, 6, 37, 2, 2, 0, false),   // 18 outputs and a column left over
  };
}

size_t in_size(const PoolGeom& g) { return size_t(g.n) * g.c * g.h * g.w; }
size_t out_size(const PoolGeom& g) { return size_t(g.n) * g.c * g.oh * g.ow; }

// Naive references, one (n, c) plane at a time. Window [o*stride - pad, + size) clipped.
void ref_maxpool(const PoolGeom& g, const std::vector<float>& x, std::vector<double>& y,
                 std::vector<int32_t>& arg) {
  y.assign(out_size(g), 0.0);
  arg.assign(out_size(g), -1);
  for (int pl = 0; pl < g.n * g.c; ++pl)
    for (int oh = 0; oh < g.oh; ++oh)
      for (int ow = 0; ow < g.ow; ++ow) {
        size_t o = (size_t(pl) * g.oh + oh) * g.ow + ow;
        double best = -std::numeric_limits<double>::infinity();
        for (int i = oh * g.stride - g.pad; i < oh * g.stride - g.pad + g.size; ++i)
          for (int j = ow * g.stride - g.pad; j < ow * g.stride - g.pad + g.size; ++j) {
            if (i < 0 || i >= g.h || j < 0 || j >= g.w) continue;
            double v = x[(size_t(pl) * g.h + i) * g.w + j];
            if (v > best) best = v, arg[o] = i * g.w + j;
          }
        y[o] = best;
      }
}

std::vector<double> ref_avgpool(const PoolGeom& g, const std::vector<float>& x) {
  std::vector<double> y(out_size(g), 0.0);
  for (int pl = 0; pl < g.n * g.c; ++pl)
    for (int oh = 0; oh < g.oh; ++oh)
      for (int ow = 0; ow < g.ow; ++ow) {
        double s = 0;
        int count = 0;  // taps inside the padded input (count_include_pad)
        for (int i = oh * g.stride - g.pad; i < oh * g.stride - g.pad + g.size; ++i)
          for (int j = ow * g.stride - g.pad; j < ow * g.stride - g.pad + g.size; ++j) {
            if (i >= g.h + g.pad || j >= g.w + g.pad) continue;
            ++count;
            if (i >= 0 && i < g.h && j >= 0 && j < g.w) s += x[(size_t(pl) * g.h + i) * g.w + j];
          }
        y[(size_t(pl) * g.oh + oh) * g.ow + ow] = s / count;
      }
  return y;
}

// Distinct values (a shuffled ramp with gaps of 0.01) so the max is unique and stays put
// under a finite-difference step of 1e-3.
std::vector<float> distinct_values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>(i) - 0.005f * n;
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

// Gradient of L(x) = sum_o r[o] * pool(x)[o] by central differences of the float forward op.
template <typename Forward>
std::vector<double> numeric_grad(const PoolGeom& g, std::vector<float> x,
                                 const std::vector<float>& r, Forward forward) {
  const float eps = 1e-3f;
  std::vector<double> grad(x.size());
  std::vector<float> y(out_size(g));
  auto loss = [&] {
    forward(x.data(), y.data());
    return std::inner_product(y.begin(), y.end(), r.begin(), 0.0);
  };
  for (size_t i = 0; i < x.size(); ++i) {
    float x0 = x[i];
    x[i] = x0 + eps;
    double lp = loss();
    x[i] = x0 - eps;
    double lm = loss();
    x[i] = x0;
    grad[i] = (lp - lm) / (2.0 * eps);
  }
  return grad;
}

std::string geom_str(const PoolGeom& g) {
  return cat(g.h, "x", g.w, " size ", g.size, " stride ", g.stride, " pad ", g.pad, " -> ", g.oh,
             "x", g.ow);
}

TEST(MaxPool, ForwardMatchesNaive) {
  auto be = make_cpu_backend();
  uint32_t seed = 1;
  for (const PoolGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = random_vec(in_size(g), seed++);
    std::vector<float> y(out_size(g));
    std::vector<int32_t> arg(out_size(g));
    be->maxpool_forward(g, x.data(), y.data(), arg.data());
    std::vector<double> ref_y;
    std::vector<int32_t> ref_arg;
    ref_maxpool(g, x, ref_y, ref_arg);
    EXPECT_TRUE(all_near(y, ref_y, 0.0));
    EXPECT_EQ(arg, ref_arg);
  }
}

TEST(MaxPool, TiesKeepTheFirstMaximumAndANaNWins) {
  auto be = make_cpu_backend();
  uint32_t seed = 11;
  for (const PoolGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    // Three values only: most windows hold ties, which must resolve to the first in
    // row-major order, as in the reference (and PyTorch).
    auto x = random_vec(in_size(g), seed++);
    for (float& v : x) v = std::round(v);
    std::vector<float> y(out_size(g));
    std::vector<int32_t> arg(out_size(g));
    be->maxpool_forward(g, x.data(), y.data(), arg.data());
    std::vector<double> ref_y;
    std::vector<int32_t> ref_arg;
    ref_maxpool(g, x, ref_y, ref_arg);
    EXPECT_EQ(arg, ref_arg);
  }
  // A NaN anywhere in a window is its maximum, wherever it sits.
  const PoolGeom g = make_pool(1, 1, 4, 4, 2, 2, 0, false);
  for (int at = 0; at < 16; ++at) {
    std::vector<float> x(16, 1.f), y(4);
    std::vector<int32_t> arg(4);
    x[at] = std::numeric_limits<float>::quiet_NaN();
    be->maxpool_forward(g, x.data(), y.data(), arg.data());
    const int o = (at / 4 / 2) * 2 + (at % 4) / 2;
    EXPECT_TRUE(std::isnan(y[o])) << "NaN at " << at;
    EXPECT_EQ(arg[o], at);
  }
}

TEST(MaxPool, BackwardScattersToArgmaxAndMatchesFiniteDifferences) {
  auto be = make_cpu_backend();
  uint32_t seed = 10;
  for (const PoolGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = distinct_values(in_size(g), seed++);
    auto dy = random_vec(out_size(g), seed++);
    std::vector<float> y(out_size(g)), dx(in_size(g), 7.f);
    std::vector<int32_t> arg(out_size(g));
    be->maxpool_forward(g, x.data(), y.data(), arg.data());
    be->maxpool_backward(g, dy.data(), arg.data(), dx.data());
    // Exact scatter-add (overlapping windows share maxima).
    std::vector<double> ref(in_size(g), 0.0);
    for (size_t o = 0; o < out_size(g); ++o)
      ref[o / (size_t(g.oh) * g.ow) * g.h * g.w + arg[o]] += dy[o];
    EXPECT_TRUE(all_near(dx, ref, 1e-6));
    std::vector<int32_t> scratch(out_size(g));
    auto num = numeric_grad(g, x, dy, [&](const float* xi, float* yo) {
      be->maxpool_forward(g, xi, yo, scratch.data());
    });
    EXPECT_TRUE(all_near(dx, num, 1e-3, 1e-3));
  }
}

TEST(AvgPool, ForwardMatchesNaive) {
  auto be = make_cpu_backend();
  uint32_t seed = 20;
  for (const PoolGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = random_vec(in_size(g), seed++);
    std::vector<float> y(out_size(g));
    be->avgpool_forward(g, x.data(), y.data());
    EXPECT_TRUE(all_near(y, ref_avgpool(g, x), 1e-6));
  }
}

TEST(AvgPool, BackwardMatchesFiniteDifferences) {
  auto be = make_cpu_backend();
  uint32_t seed = 30;
  for (const PoolGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = random_vec(in_size(g), seed++), dy = random_vec(out_size(g), seed++);
    std::vector<float> dx(in_size(g), 7.f);
    be->avgpool_backward(g, dy.data(), dx.data());
    auto num = numeric_grad(g, x, dy,
                            [&](const float* xi, float* yo) { be->avgpool_forward(g, xi, yo); });
    EXPECT_TRUE(all_near(dx, num, 1e-3, 1e-3));
  }
}

// A batch big enough for the threaded path must equal the naive reference and, for the
// backward passes, the serial path run one image at a time.
TEST(Pool, ThreadedBatchMatchesNaiveAndPerImage) {
  auto be = make_cpu_backend();
  PoolGeom g = make_pool(8, 16, 27, 27, 3, 2, 0, false);
  PoolGeom one = g;
  one.n = 1;
  auto x = random_vec(in_size(g), 60), dy = random_vec(out_size(g), 61);
  std::vector<float> y(out_size(g)), dx(in_size(g)), ay(out_size(g)), adx(in_size(g));
  std::vector<int32_t> arg(out_size(g));
  be->maxpool_forward(g, x.data(), y.data(), arg.data());
  be->maxpool_backward(g, dy.data(), arg.data(), dx.data());
  be->avgpool_forward(g, x.data(), ay.data());
  be->avgpool_backward(g, dy.data(), adx.data());
  std::vector<double> ref_y;
  std::vector<int32_t> ref_arg;
  ref_maxpool(g, x, ref_y, ref_arg);
  EXPECT_TRUE(all_near(y, ref_y, 0.0));
  EXPECT_EQ(arg, ref_arg);
  EXPECT_TRUE(all_near(ay, ref_avgpool(g, x), 1e-6));
  const size_t in1 = in_size(one), out1 = out_size(one);
  for (int n = 0; n < g.n; ++n) {
    std::vector<float> dx1(in1), adx1(in1);
    be->maxpool_backward(one, dy.data() + n * out1, arg.data() + n * out1, dx1.data());
    be->avgpool_backward(one, dy.data() + n * out1, adx1.data());
    ASSERT_TRUE(std::equal(dx1.begin(), dx1.end(), dx.begin() + n * in1)) << "image " << n;
    ASSERT_TRUE(std::equal(adx1.begin(), adx1.end(), adx.begin() + n * in1)) << "image " << n;
  }
}

}  // namespace
}  // namespace owt
