// Cross-channel LRN of the CPU backend: forward against a naive double loop (PyTorch's
// nn.LocalResponseNorm window and alpha/size), backward against central differences of that
// double forward, for AlexNet's constants and for a large alpha that makes the cross term count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backend_test_util.h"
#include "owt/backend/backend.h"

namespace owt {
namespace {

using test::all_near;
using test::random_vec;

size_t numel(const LrnGeom& g) { return size_t(g.n) * g.c * g.h * g.w; }

// y = x * (k + alpha/size * sum_{c' in [c - size/2, c + (size-1)/2]} x[c']^2)^-beta
std::vector<double> ref_lrn(const LrnGeom& g, const std::vector<double>& x) {
  std::vector<double> y(x.size());
  size_t hw = size_t(g.h) * g.w;
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < g.c; ++c)
      for (size_t i = 0; i < hw; ++i) {
        double s = 0;
        for (int cc = c - g.size / 2; cc <= c + (g.size - 1) / 2; ++cc)
          if (cc >= 0 && cc < g.c) {
            double v = x[(size_t(n) * g.c + cc) * hw + i];
            s += v * v;
          }
        size_t at = (size_t(n) * g.c + c) * hw + i;
        y[at] = x[at] * std::pow(double(g.k) + double(g.alpha) / g.size * s, -double(g.beta));
      }
  return y;
}

std::vector<LrnGeom> geometries() {
  return {
      LrnGeom{2, 7, 3, 4, 5, 1e-4f, 0.75f, 2.f},  // AlexNet constants, edges clipped
      LrnGeom{2, 7, 3, 4, 5, 0.9f, 0.75f, 1.f},   // strong normalisation
      LrnGeom{1, 6, 2, 3, 4, 0.6f, 0.5f, 1.5f},   // even size: asymmetric window
      LrnGeom{1, 3, 5, 5, 3, 0.5f, 1.2f, 1.f},
  };
}

std::string geom_str(const LrnGeom& g) {
  return cat("C", g.c, " size ", g.size, " alpha ", g.alpha, " beta ", g.beta, " k ", g.k);
}

TEST(Lrn, ForwardMatchesNaive) {
  auto be = make_cpu_backend();
  uint32_t seed = 1;
  for (const LrnGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = random_vec(numel(g), seed++, -2.f, 2.f);
    std::vector<float> scale(numel(g)), y(numel(g));
    be->lrn_forward(g, x.data(), scale.data(), y.data());
    EXPECT_TRUE(all_near(y, ref_lrn(g, std::vector<double>(x.begin(), x.end())), 1e-6, 1e-5));
  }
}

TEST(Lrn, BackwardMatchesFiniteDifferences) {
  auto be = make_cpu_backend();
  uint32_t seed = 10;
  for (const LrnGeom& g : geometries()) {
    SCOPED_TRACE(geom_str(g));
    auto x = random_vec(numel(g), seed++, -2.f, 2.f), dy = random_vec(numel(g), seed++);
    std::vector<float> scale(numel(g)), y(numel(g)), dx(numel(g));
    be->lrn_forward(g, x.data(), scale.data(), y.data());
    be->lrn_backward(g, x.data(), y.data(), scale.data(), dy.data(), dx.data());
    // d/dx of L = sum dy * lrn(x), double central differences.
    std::vector<double> xd(x.begin(), x.end()), num(numel(g));
    const double eps = 1e-6;
    for (size_t i = 0; i < xd.size(); ++i) {
      double x0 = xd[i], l[2];
      for (int s = 0; s < 2; ++s) {
        xd[i] = x0 + (s ? -eps : eps);
        auto yy = ref_lrn(g, xd);
        l[s] = 0;
        for (size_t j = 0; j < yy.size(); ++j) l[s] += dy[j] * yy[j];
      }
      xd[i] = x0;
      num[i] = (l[0] - l[1]) / (2 * eps);
    }
    EXPECT_TRUE(all_near(dx, num, 1e-5, 1e-4));
  }
}

// AlexNet-sized planes take the threaded path; it must equal the naive forward and, for the
// backward pass, the serial path run one image at a time.
TEST(Lrn, ThreadedBatchMatchesNaiveAndPerImage) {
  auto be = make_cpu_backend();
  LrnGeom g{4, 16, 13, 13, 5, 0.5f, 0.75f, 2.f}, one = g;
  one.n = 1;
  auto x = random_vec(numel(g), 70, -2.f, 2.f), dy = random_vec(numel(g), 71);
  std::vector<float> scale(numel(g)), y(numel(g)), dx(numel(g));
  be->lrn_forward(g, x.data(), scale.data(), y.data());
  be->lrn_backward(g, x.data(), y.data(), scale.data(), dy.data(), dx.data());
  EXPECT_TRUE(all_near(y, ref_lrn(g, std::vector<double>(x.begin(), x.end())), 1e-6, 1e-5));
  const size_t per = numel(one);
  for (int n = 0; n < g.n; ++n) {
    std::vector<float> dx1(per);
    be->lrn_backward(one, x.data() + n * per, y.data() + n * per, scale.data() + n * per,
                     dy.data() + n * per, dx1.data());
    ASSERT_TRUE(std::equal(dx1.begin(), dx1.end(), dx.begin() + n * per)) << "image " << n;
  }
}

}  // namespace
}  // namespace owt
