// Layer forward passes against naive loops written here in double (docs/ARCHITECTURE.md, "Conventions"): conv, linear,
// pooling, lrn, relu, flatten, the softmax cross-entropy loss, and dropout's keyed mask
// (rate, scaling, determinism, and the global-row / global-column invariants of K workers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gradient_check.h"

namespace owt::test {
namespace {

// |got - want| <= atol + rtol * |want| elementwise; reports the first few differences.
::testing::AssertionResult near_all(const float* got, const std::vector<double>& want, double atol,
                                    double rtol) {
  int bad = 0;
  auto failure = ::testing::AssertionFailure();
  for (size_t i = 0; i < want.size(); ++i) {
    double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(d <= atol + rtol * std::fabs(want[i]))) {
      if (bad < 5) failure << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return failure << "\n  " << bad << " of " << want.size() << " differ";
}

// ---- conv -------------------------------------------------------------------------------

void check_conv(const std::string& yaml, int n, int c, int h, int w, int k, int kh, int kw,
                int stride, int pad, bool bias) {
  LayerFixture f(yaml, Shape{c, h, w}, n);
  const int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
  ASSERT_EQ(f.out_shape, (Shape{k, oh, ow}));
  TestRng rng(5);
  rng.fill(f.x.f32(), f.x.numel());
  auto params = f.layer->params();
  ASSERT_EQ(params.size(), bias ? 2u : 1u);
  const float* wt = params[0]->value.f32();  // (K, C, KH, KW)
  ASSERT_EQ(params[0]->value.shape(), (Shape{k, c, kh, kw}));
  if (bias) rng.fill(params[1]->value.f32(), k);  // the default init is small; make it count
  f.forward();
  std::vector<double> want(f.y.numel());
  for (int in = 0; in < n; ++in)
    for (int ik = 0; ik < k; ++ik)
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < ow; ++x) {
          double s = bias ? params[1]->value.f32()[ik] : 0.0;
          for (int ic = 0; ic < c; ++ic)
            for (int i = 0; i < kh; ++i)
              for (int j = 0; j < kw; ++j) {
                int hh = y * stride - pad + i, ww = x * stride - pad + j;
                if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
                s += static_cast<double>(f.x.f32()[((in * c + ic) * h + hh) * w + ww]) *
                     wt[((ik * c + ic) * kh + i) * kw + j];
              }
          want[((in * k + ik) * oh + y) * ow + x] = s;
        }
  EXPECT_TRUE(near_all(f.y.f32(), want, 1e-4, 1e-4));
}

TEST(NaiveReference, ConvStride1Pad2WithBias) {
  check_conv("{name: c, type: conv, filters: 5, size: 5, pad: 2}", 2, 3, 9, 8, 5, 5, 5, 1, 2, true);
}

TEST(NaiveReference, ConvStride4Pad2) {
  check_conv("{name: c, type: conv, filters: 4, size: 11, stride: 4, pad: 2}", 2, 3, 23, 21, 4, 11,
             11, 4, 2, true);
}

TEST(NaiveReference, ConvNonSquareStride2NoBias) {
  check_conv("{name: c, type: conv, filters: 3, size_h: 3, size_w: 5, stride: 2, pad: 1, bias: false}",
             3, 2, 7, 9, 3, 3, 5, 2, 1, false);
}

// ---- linear -----------------------------------------------------------------------------

void check_linear(bool bias) {
  const int n = 6, in = 11, out = 7;
  LayerFixture f(bias ? "{name: fc, type: linear, outputs: 7}"
                      : "{name: fc, type: linear, outputs: 7, bias: false}",
                 Shape{in}, n);
  TestRng rng(6);
  rng.fill(f.x.f32(), f.x.numel());
  auto params = f.layer->params();
  ASSERT_EQ(params[0]->value.shape(), (Shape{out, in}));  // PyTorch layout (out, in)
  if (bias) rng.fill(params[1]->value.f32(), out);
  f.forward();
  std::vector<double> want(n * out);
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < out; ++o) {
      double s = bias ? params[1]->value.f32()[o] : 0.0;
      for (int i = 0; i < in; ++i)
        s += static_cast<double>(f.x.f32()[r * in + i]) * params[0]->value.f32()[o * in + i];
      want[r * out + o] = s;
    }
  EXPECT_TRUE(near_all(f.y.f32(), want, 1e-5, 1e-5));
}

TEST(NaiveReference, LinearWithBias) { check_linear(true); }
TEST(NaiveReference, LinearWithoutBias) { check_linear(false); }

TEST(NaiveReference, DataParallelLinearWithManyWorkersDoesNotCommunicate) {
  // A replicated (data-parallel) linear on worker 1 of 2 computes all its outputs locally:
  // the same y as with one worker, and no collective.
  LayerPlacement place;
  place.model_parallel = false;
  place.rank = 1;
  place.workers = 2;
  LayerFixture one("{name: fc, type: linear, outputs: 6}", Shape{5}, 3);
  LayerFixture two("{name: fc, type: linear, outputs: 6}", Shape{5}, 3, place);
  EXPECT_EQ(two.out_shape, (Shape{6}));
  EXPECT_FALSE(two.layer->params()[0]->sharded());
  EXPECT_FALSE(two.layer->input_grad_placement().is_partial());
  TestRng rng(17);
  rng.fill(one.x.f32(), one.x.numel());
  std::copy(one.x.f32(), one.x.f32() + one.x.numel(), two.x.f32());
  one.forward();
  two.comm->reset_counters();
  two.forward();
  for (int64_t i = 0; i < one.y.numel(); ++i) ASSERT_EQ(two.y.f32()[i], one.y.f32()[i]) << i;
  Tensor dy = two.backend->empty(two.y.shape());
  rng.fill(dy.f32(), dy.numel());
  two.layer->backward(two.ctx, two.x, two.y, dy, &two.dx);
  one.layer->backward(one.ctx, one.x, one.y, dy, &one.dx);
  for (int64_t i = 0; i < one.dx.numel(); ++i) ASSERT_EQ(two.dx.f32()[i], one.dx.f32()[i]) << i;
  EXPECT_EQ(two.comm->total_elements_sent(), 0u);
}

TEST(NaiveReference, LinearDefaultInitIsPyTorchUniform) {
  // PyTorch's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  LayerFixture f("{name: fc, type: linear, outputs: 64}", Shape{100}, 1);
  for (Param* p : f.layer->params()) {
    float lo = 1.f, hi = -1.f;
    for (int64_t i = 0; i < p->value.numel(); ++i) {
      lo = std::min(lo, p->value.f32()[i]);
      hi = std::max(hi, p->value.f32()[i]);
    }
    EXPECT_GE(lo, -0.1f) << p->name;
    EXPECT_LE(hi, 0.1f) << p->name;
    EXPECT_LT(lo, -0.05f) << p->name;  // actually spread over the range
    EXPECT_GT(hi, 0.05f) << p->name;
  }
}

// ---- pooling, lrn, relu, flatten ----------------------------------------------------------

void check_pool(bool is_max, int size, int stride, int pad, int c, int h, int w) {
  std::string yaml = std::string("{name: p, type: ") + (is_max ? "maxpool" : "avgpool") +
                     ", size: " + std::to_string(size) + ", stride: " + std::to_string(stride) +
                     ", pad: " + std::to_string(pad) + "}";
  const int n = 2, oh = (h + 2 * pad - size) / stride + 1, ow = (w + 2 * pad - size) / stride + 1;
  LayerFixture f(yaml, Shape{c, h, w}, n);
  ASSERT_EQ(f.out_shape, (Shape{c, oh, ow}));
  TestRng rng(7);
  rng.fill(f.x.f32(), f.x.numel());
  f.forward();
  std::vector<double> want(f.y.numel());
  for (int pl = 0; pl < n * c; ++pl)
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x) {
        int h0 = y * stride - pad, w0 = x * stride - pad;
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int i = h0; i < h0 + size; ++i)
          for (int j = w0; j < w0 + size; ++j) {
            if (i < 0 || i >= h || j < 0 || j >= w) continue;
            double v = f.x.f32()[(pl * h + i) * w + j];
            best = std::max(best, v);
            sum += v;
          }
        // count_include_pad: the window clipped to the padded input, pad cells counted.
        int count = (std::min(h0 + size, h + pad) - h0) * (std::min(w0 + size, w + pad) - w0);
        want[(pl * oh + y) * ow + x] = is_max ? best : sum / count;
      }
  EXPECT_TRUE(near_all(f.y.f32(), want, 1e-6, 1e-6));
}

TEST(NaiveReference, MaxPool2x2) { check_pool(true, 2, 2, 0, 3, 6, 8); }
TEST(NaiveReference, MaxPoolOverlapping3x3Stride2) { check_pool(true, 3, 2, 0, 2, 13, 13); }
TEST(NaiveReference, MaxPoolPadded) { check_pool(true, 3, 2, 1, 2, 8, 7); }
TEST(NaiveReference, AvgPool3x3Stride2Pad1) { check_pool(false, 3, 2, 1, 2, 7, 8); }
TEST(NaiveReference, AvgPool2x2) { check_pool(false, 2, 2, 0, 2, 6, 6); }

void check_lrn(int size, double alpha, double beta, double k) {
  const int n = 2, c = 7, h = 3, w = 2;
  std::string yaml = "{name: n, type: lrn, size: " + std::to_string(size) +
                     ", alpha: " + std::to_string(alpha) + ", beta: " + std::to_string(beta) +
                     ", k: " + std::to_string(k) + "}";
  LayerFixture f(yaml, Shape{c, h, w}, n);
  TestRng rng(8);
  rng.fill(f.x.f32(), f.x.numel(), -2.f, 2.f);
  f.forward();
  std::vector<double> want(f.y.numel());
  for (int in = 0; in < n; ++in)
    for (int ic = 0; ic < c; ++ic)
      for (int i = 0; i < h * w; ++i) {
        double sq = 0;
        for (int cc = ic - size / 2; cc <= ic + (size - 1) / 2; ++cc)
          if (cc >= 0 && cc < c) {
            double v = f.x.f32()[(in * c + cc) * h * w + i];
            sq += v * v;
          }
        double x = f.x.f32()[(in * c + ic) * h * w + i];
        want[(in * c + ic) * h * w + i] = x * std::pow(k + alpha / size * sq, -beta);
      }
  EXPECT_TRUE(near_all(f.y.f32(), want, 1e-6, 1e-5));
}

TEST(NaiveReference, LrnAlexNet) { check_lrn(5, 1e-4, 0.75, 2.0); }
TEST(NaiveReference, LrnLargeAlpha) { check_lrn(5, 0.5, 0.75, 1.0); }
TEST(NaiveReference, LrnSize3) { check_lrn(3, 0.3, 0.5, 1.5); }

TEST(NaiveReference, ReluAndFlatten) {
  LayerFixture relu("{name: r, type: relu}", Shape{3, 4}, 3);
  TestRng rng(9);
  rng.fill(relu.x.f32(), relu.x.numel());
  relu.forward();
  for (int64_t i = 0; i < relu.x.numel(); ++i)
    ASSERT_EQ(relu.y.f32()[i], std::max(relu.x.f32()[i], 0.f)) << i;

  LayerFixture flat("{name: f, type: flatten}", Shape{2, 3, 4}, 2);
  EXPECT_EQ(flat.out_shape, (Shape{24}));
  rng.fill(flat.x.f32(), flat.x.numel());
  flat.forward();
  for (int64_t i = 0; i < flat.x.numel(); ++i) ASSERT_EQ(flat.y.f32()[i], flat.x.f32()[i]) << i;
}

// ---- softmax cross-entropy ----------------------------------------------------------------

struct LossCase {
  LayerFixture f;
  LossLayer* loss;
  Tensor labels;
  LossCase(int rows, int classes) : f("{name: loss, type: softmax_cross_entropy}", Shape{classes}, rows) {
    loss = f.layer->as_loss();
    labels = f.backend->empty(Shape{rows}, DType::I32);
  }
};

// Summed loss in double: log-sum-exp with the max subtracted, minus the target logit.
double naive_loss_sum(const float* z, const int32_t* labels, int rows, int classes) {
  double sum = 0;
  for (int r = 0; r < rows; ++r) {
    double m = -INFINITY;
    for (int c = 0; c < classes; ++c) m = std::max(m, static_cast<double>(z[r * classes + c]));
    double s = 0;
    for (int c = 0; c < classes; ++c) s += std::exp(z[r * classes + c] - m);
    sum += m + std::log(s) - z[r * classes + labels[r]];
  }
  return sum;
}

TEST(NaiveReference, SoftmaxCrossEntropyLossValue) {
  const int rows = 8, classes = 10;
  LossCase lc(rows, classes);
  ASSERT_NE(lc.loss, nullptr);
  TestRng rng(10);
  rng.fill(lc.f.x.f32(), lc.f.x.numel(), -3.f, 3.f);
  for (int r = 0; r < rows; ++r) lc.labels.i32()[r] = static_cast<int32_t>(rng.index(classes));
  double got = lc.loss->forward_loss(lc.f.ctx, lc.f.x, lc.labels);
  double want = naive_loss_sum(lc.f.x.f32(), lc.labels.i32(), rows, classes);
  EXPECT_NEAR(got, want, 1e-5 * rows);

  // dlogits = (softmax - onehot) / loss_rows.
  lc.f.ctx.loss_rows = 32;
  Tensor d = lc.f.backend->empty(lc.f.x.shape());
  lc.loss->backward_loss(lc.f.ctx, lc.f.x, lc.labels, d);
  std::vector<double> dwant(rows * classes);
  for (int r = 0; r < rows; ++r) {
    const float* z = lc.f.x.f32() + r * classes;
    double m = *std::max_element(z, z + classes), s = 0;
    for (int c = 0; c < classes; ++c) s += std::exp(z[c] - m);
    for (int c = 0; c < classes; ++c)
      dwant[r * classes + c] = (std::exp(z[c] - m) / s - (c == lc.labels.i32()[r])) / 32.0;
  }
  EXPECT_TRUE(near_all(d.f32(), dwant, 1e-7, 1e-5));
}

TEST(NaiveReference, SoftmaxCrossEntropyIsStableForHugeLogits) {
  // exp(800) overflows float and double: the loss must subtract the row max.
  const int rows = 3, classes = 4;
  LossCase lc(rows, classes);
  const float z[rows * classes] = {800, 799, 795, 790,  -800, -801, -799, -810,  0, 0, 0, 0};
  std::copy(z, z + rows * classes, lc.f.x.f32());
  const int32_t labels[rows] = {1, 3, 2};
  std::copy(labels, labels + rows, lc.labels.i32());
  double got = lc.loss->forward_loss(lc.f.ctx, lc.f.x, lc.labels);
  ASSERT_TRUE(std::isfinite(got));
  EXPECT_NEAR(got, naive_loss_sum(z, labels, rows, classes), 1e-4);
  // Closed form: row 0 (label 799) 1 + log(1 + e^-1 + e^-5 + e^-10); row 1 (label -810, max
  // -799) 11 + log(1 + e^-1 + e^-2 + e^-11); row 2 log 4.
  const double closed = 1.0 + std::log1p(std::exp(-1.0) + std::exp(-5.0) + std::exp(-10.0)) + 11.0 +
                        std::log1p(std::exp(-1.0) + std::exp(-2.0) + std::exp(-11.0)) + std::log(4.0);
  EXPECT_NEAR(got, closed, 1e-4);
  Tensor d = lc.f.backend->empty(lc.f.x.shape());
  lc.loss->backward_loss(lc.f.ctx, lc.f.x, lc.labels, d);
  for (int64_t i = 0; i < d.numel(); ++i) ASSERT_TRUE(std::isfinite(d.f32()[i])) << i;
}

TEST(NaiveReference, SoftmaxCrossEntropyCountCorrect) {
  const int rows = 4, classes = 8;
  LossCase lc(rows, classes);
  // Row r: logit of class c is c (class 7 is top); labels at ranks 1, 3, 5 and 6.
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < classes; ++c) lc.f.x.f32()[r * classes + c] = static_cast<float>(c);
  const int32_t labels[rows] = {7, 5, 3, 2};
  int64_t top1 = 0, top5 = 0;
  lc.loss->count_correct(lc.f.ctx, lc.f.x, labels, &top1, &top5);
  EXPECT_EQ(top1, 1);
  EXPECT_EQ(top5, 3);
}

// ---- dropout ------------------------------------------------------------------------------

// y of a dropout layer named `name` over `x` (rows, cols), with ctx fields as given.
std::vector<float> dropout_forward(const std::string& name, float rate, const std::vector<float>& x,
                                   int rows, int cols, uint64_t seed, int64_t step, int64_t row0,
                                   const LayerPlacement& place = LayerPlacement{}) {
  LayerFixture f("{name: " + name + ", type: dropout, rate: " + std::to_string(rate) + "}",
                 Shape{cols}, rows, place);
  f.ctx.training = true;
  f.ctx.seed = seed;
  f.ctx.step = step;
  f.ctx.row0 = row0;
  std::copy(x.begin(), x.end(), f.x.f32());
  f.forward();
  return std::vector<float>(f.y.f32(), f.y.f32() + f.y.numel());
}

std::vector<float> positive_input(int n, uint64_t seed) {
  TestRng rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = rng.uniform(0.5f, 1.5f);
  return x;
}

double fraction_differing(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] == 0.f) != (b[i] == 0.f);
  return static_cast<double>(d) / a.size();
}

TEST(NaiveReference, DropoutRateAndScale) {
  const int rows = 64, cols = 512;
  for (float rate : {0.1f, 0.5f, 0.8f}) {
    std::vector<float> x = positive_input(rows * cols, 11);
    std::vector<float> y = dropout_forward("d", rate, x, rows, cols, 1, 0, 0);
    const float scale = 1.f / (1.f - rate);
    int64_t zeros = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      if (y[i] == 0.f) {
        ++zeros;
      } else {
        ASSERT_FLOAT_EQ(y[i], x[i] * scale) << "rate " << rate << " element " << i;
      }
    }
    // N = 32768 draws: the standard deviation of the fraction is < 0.003.
    EXPECT_NEAR(static_cast<double>(zeros) / x.size(), rate, 0.015) << "rate " << rate;
  }
}

TEST(NaiveReference, DropoutMaskIsKeyed) {
  const int rows = 16, cols = 64;
  std::vector<float> x = positive_input(rows * cols, 12);
  std::vector<float> a = dropout_forward("d", 0.5f, x, rows, cols, 1, 5, 0);
  EXPECT_EQ(a, dropout_forward("d", 0.5f, x, rows, cols, 1, 5, 0)) << "same key, different mask";
  // Independent masks of rate 0.5 differ in about half the elements.
  EXPECT_GT(fraction_differing(a, dropout_forward("d", 0.5f, x, rows, cols, 1, 6, 0)), 0.35)
      << "step does not change the mask";
  EXPECT_GT(fraction_differing(a, dropout_forward("d", 0.5f, x, rows, cols, 2, 5, 0)), 0.35)
      << "seed does not change the mask";
  EXPECT_GT(fraction_differing(a, dropout_forward("d2", 0.5f, x, rows, cols, 1, 5, 0)), 0.35)
      << "two dropout layers share a mask";
  // Within one mask, rows and columns are not copies of each other.
  std::vector<float> row0(a.begin(), a.begin() + cols), row1(a.begin() + cols, a.begin() + 2 * cols);
  EXPECT_GT(fraction_differing(row0, row1), 0.2);
}

TEST(NaiveReference, DropoutGlobalRowsAreTheKWorkerInvariant) {
  // Worker k of K runs rows [r, r + n) of the global batch with ctx.row0 = r: its mask must be
  // rows r.. of the single-worker mask over all rows.
  const int rows = 24, cols = 40;
  std::vector<float> x = positive_input(rows * cols, 13);
  std::vector<float> full = dropout_forward("d", 0.5f, x, rows, cols, 3, 9, 0);
  for (int r : {0, 5, 8, 16}) {
    const int n = std::min(8, rows - r);
    std::vector<float> part(x.begin() + r * cols, x.begin() + (r + n) * cols);
    std::vector<float> got = dropout_forward("d", 0.5f, part, n, cols, 3, 9, r);
    std::vector<float> want(full.begin() + r * cols, full.begin() + (r + n) * cols);
    EXPECT_EQ(got, want) << "rows from " << r;
  }
  // And the offset matters: the same local rows with row0 = 0 get a different mask.
  std::vector<float> part(x.begin() + 8 * cols, x.begin() + 16 * cols);
  std::vector<float> shifted = dropout_forward("d", 0.5f, part, 8, cols, 3, 9, 0);
  EXPECT_GT(fraction_differing(shifted, std::vector<float>(full.begin() + 8 * cols,
                                                           full.begin() + 16 * cols)),
            0.3);
}

TEST(NaiveReference, DropoutGlobalColumnsOfAFeatureShard) {
  // A dropout after a model-parallel linear sees columns [col0, col0 + m) of the features:
  // its mask must be those columns of the unsharded mask.
  const int rows = 6, cols = 30;
  std::vector<float> x = positive_input(rows * cols, 14);
  std::vector<float> full = dropout_forward("d", 0.5f, x, rows, cols, 4, 2, 0);
  for (int col0 : {0, 10, 20}) {
    const int m = 10;
    LayerPlacement place;
    place.input = Placement::shard(1);
    place.input.begin = col0;
    place.input.size = cols;
    std::vector<float> part(rows * m), want(rows * m);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < m; ++c) {
        part[r * m + c] = x[r * cols + col0 + c];
        want[r * m + c] = full[r * cols + col0 + c];
      }
    EXPECT_EQ(dropout_forward("d", 0.5f, part, rows, m, 4, 2, 0, place), want) << "col0 " << col0;
  }
}

TEST(NaiveReference, DropoutBackwardUsesTheForwardMask) {
  LayerFixture f("{name: d, type: dropout, rate: 0.5}", Shape{50}, 4);
  std::vector<float> x = positive_input(200, 15);
  std::copy(x.begin(), x.end(), f.x.f32());
  f.forward();
  Tensor dy = f.backend->empty(f.y.shape());
  std::fill(dy.f32(), dy.f32() + dy.numel(), 1.f);
  f.layer->backward(f.ctx, f.x, f.y, dy, &f.dx);
  for (int64_t i = 0; i < f.x.numel(); ++i)
    ASSERT_FLOAT_EQ(f.dx.f32()[i], f.y.f32()[i] / f.x.f32()[i]) << i;
}

TEST(NaiveReference, DropoutRateZeroIsIdentityInTraining) {
  std::vector<float> x = positive_input(64, 16);
  EXPECT_EQ(dropout_forward("d", 0.f, x, 4, 16, 1, 0, 0), x);
}

}  // namespace
}  // namespace owt::test
