// Finite-difference gradient checks of every registered layer type (DESIGN §5): the analytic
// backward (input and params) against central differences of L = sum(y * R) in double;
// ReLU skips inputs near its kink, max-pool inputs are spaced so no argmax flips.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "gradient_check.h"

namespace owt::test {
namespace {

// Fills f.x uniformly and runs the full check.
GradCheckStats check_random_input(LayerFixture& f, uint64_t seed, const GradCheckOptions& opt = {}) {
  TestRng rng(seed);
  rng.fill(f.x.f32(), f.x.numel());
  return check_layer_gradients(f, opt);
}

GradCheckOptions all_up_to(int64_t n) {
  GradCheckOptions opt;
  opt.check_all_up_to = n;
  return opt;
}

// The layer types that have gradient checks in this file; a registered type missing here
// fails EveryRegisteredTypeIsChecked, so a new layer cannot arrive without one.
const std::set<std::string>& covered() {
  static const std::set<std::string> s = {"conv", "maxpool", "avgpool", "lrn", "relu", "dropout",
                                          "flatten", "linear", "softmax_cross_entropy"};
  return s;
}

// ---- conv -------------------------------------------------------------------------------

TEST(GradientCheck, Conv5x5Stride1Pad2) {
  LayerFixture f("{name: c, type: conv, filters: 4, size: 5, pad: 2}", Shape{3, 8, 8}, 2);
  EXPECT_EQ(f.out_shape, (Shape{4, 8, 8}));
  ASSERT_EQ(f.layer->params().size(), 2u);
  GradCheckStats st = check_random_input(f, 1);
  EXPECT_EQ(st.checked, 200 + 200 + 4);  // x and weight: a subset; bias: all
}

TEST(GradientCheck, Conv11x11Stride4Pad2) {
  LayerFixture f("{name: c, type: conv, filters: 3, size: 11, stride: 4, pad: 2}", Shape{3, 19, 19}, 2);
  EXPECT_EQ(f.out_shape, (Shape{3, 4, 4}));
  check_random_input(f, 2);
}

TEST(GradientCheck, ConvNonSquareKernel) {
  LayerFixture f("{name: c, type: conv, filters: 3, size_h: 3, size_w: 5, stride: 2, pad: 1}",
                 Shape{2, 7, 9}, 2);
  EXPECT_EQ(f.out_shape, (Shape{3, 4, 4}));  // (7+2-3)/2+1, (9+2-5)/2+1
  check_random_input(f, 3);
}

TEST(GradientCheck, ConvWithoutBias) {
  LayerFixture f("{name: c, type: conv, filters: 4, size: 3, pad: 1, bias: false}", Shape{2, 6, 6}, 2);
  ASSERT_EQ(f.layer->params().size(), 1u);
  EXPECT_EQ(f.layer->params()[0]->name, "c.weight");
  check_random_input(f, 4);
}

TEST(GradientCheck, ConvHeInit) {
  // He init leaves a zero bias; the check still has to see the bias gradient.
  LayerFixture f("{name: c, type: conv, filters: 2, size: 3, init: he}", Shape{2, 5, 5}, 3);
  check_random_input(f, 5);
}

// ---- pooling ----------------------------------------------------------------------------

// Values of a random permutation of a grid spaced 0.05 apart (> 2 * step): no window's argmax
// changes under a +-step perturbation, so max-pool is differentiable at every checked point.
void fill_spaced_permutation(LayerFixture& f, uint64_t seed) {
  TestRng rng(seed);
  std::vector<int64_t> perm = rng.permutation(f.x.numel());
  for (int64_t i = 0; i < f.x.numel(); ++i)
    f.x.f32()[i] = 0.05f * static_cast<float>(perm[i] - f.x.numel() / 2);
}

TEST(GradientCheck, MaxPool2x2Stride2) {
  LayerFixture f("{name: p, type: maxpool, size: 2, stride: 2}", Shape{3, 6, 6}, 2);
  EXPECT_EQ(f.out_shape, (Shape{3, 3, 3}));
  fill_spaced_permutation(f, 10);
  GradCheckStats st = check_layer_gradients(f);
  EXPECT_EQ(st.checked, 216);  // small enough to check every input
}

TEST(GradientCheck, MaxPoolOverlapping3x3Stride2) {
  // Overlapping windows: an input that is the max of two windows gets both gradients.
  LayerFixture f("{name: p, type: maxpool, size: 3, stride: 2}", Shape{2, 7, 7}, 2);
  EXPECT_EQ(f.out_shape, (Shape{2, 3, 3}));
  fill_spaced_permutation(f, 11);
  check_layer_gradients(f, all_up_to(1000));
}

TEST(GradientCheck, MaxPoolPadded) {
  LayerFixture f("{name: p, type: maxpool, size: 3, stride: 2, pad: 1}", Shape{2, 6, 6}, 2);
  EXPECT_EQ(f.out_shape, (Shape{2, 3, 3}));
  fill_spaced_permutation(f, 12);
  check_layer_gradients(f, all_up_to(1000));
}

TEST(GradientCheck, AvgPool3x3Stride2Pad1) {
  LayerFixture f("{name: p, type: avgpool, size: 3, stride: 2, pad: 1}", Shape{2, 7, 7}, 2);
  EXPECT_EQ(f.out_shape, (Shape{2, 4, 4}));
  check_random_input(f, 13, all_up_to(1000));
}

TEST(GradientCheck, AvgPool2x2) {
  LayerFixture f("{name: p, type: avgpool, size: 2}", Shape{2, 4, 6}, 2);
  EXPECT_EQ(f.out_shape, (Shape{2, 2, 3}));
  check_random_input(f, 14);
}

// ---- lrn --------------------------------------------------------------------------------

TEST(GradientCheck, LrnAlexNetParameters) {
  LayerFixture f("{name: n, type: lrn, size: 5, alpha: 1.0e-4, beta: 0.75, k: 2}", Shape{7, 3, 3}, 2);
  check_random_input(f, 20, all_up_to(1000));
}

TEST(GradientCheck, LrnLargeAlpha) {
  // alpha 0.1 (and k 1) makes the cross-channel term large enough that a wrong window or a
  // missing factor in the backward shows; inputs up to +-2 so x^2 matters.
  LayerFixture f("{name: n, type: lrn, size: 5, alpha: 0.1, beta: 0.75, k: 1}", Shape{7, 3, 3}, 2);
  TestRng rng(21);
  rng.fill(f.x.f32(), f.x.numel(), -2.f, 2.f);
  check_layer_gradients(f, all_up_to(1000));
}

TEST(GradientCheck, LrnSize3FewChannels) {
  // Fewer channels than the window: every window is clipped at both ends.
  LayerFixture f("{name: n, type: lrn, size: 3, alpha: 0.5, beta: 0.75, k: 1}", Shape{2, 3, 2}, 3);
  TestRng rng(22);
  rng.fill(f.x.f32(), f.x.numel(), -2.f, 2.f);
  check_layer_gradients(f);
}

// ---- elementwise ------------------------------------------------------------------------

TEST(GradientCheck, ReluSkipsKinks) {
  LayerFixture f("{name: r, type: relu}", Shape{5, 4, 4}, 2);
  GradCheckOptions opt;
  opt.check_all_up_to = 1000;
  opt.skip_input = [&](const float* x, int64_t i) { return std::fabs(x[i]) < 2 * opt.step; };
  GradCheckStats st = check_random_input(f, 30, opt);
  EXPECT_GT(st.skipped, 0);         // U(-1,1) puts ~2% of 160 inputs within 0.02 of 0
  EXPECT_GT(st.checked, 120);
  // Both sides of the kink are represented among the checked inputs.
  int neg = 0, pos = 0;
  for (int64_t i = 0; i < f.x.numel(); ++i) (f.x.f32()[i] < 0 ? neg : pos)++;
  EXPECT_GT(neg, 20);
  EXPECT_GT(pos, 20);
}

TEST(GradientCheck, DropoutTraining) {
  LayerFixture f("{name: d, type: dropout, rate: 0.4}", Shape{30}, 4);
  f.ctx.training = true;  // the mask is keyed by (seed, step, row0): identical on every call
  check_random_input(f, 31);
  // Some elements really were dropped.
  f.forward();
  int zeros = 0;
  for (int64_t i = 0; i < f.y.numel(); ++i) zeros += f.y.f32()[i] == 0.f;
  EXPECT_GT(zeros, 10);
  EXPECT_LT(zeros, 90);
}

TEST(GradientCheck, DropoutInferenceIsIdentity) {
  LayerFixture f("{name: d, type: dropout, rate: 0.5}", Shape{6, 5}, 3);
  f.ctx.training = false;
  TestRng rng(32);
  rng.fill(f.x.f32(), f.x.numel());
  f.forward();
  for (int64_t i = 0; i < f.x.numel(); ++i) ASSERT_EQ(f.y.f32()[i], f.x.f32()[i]) << i;
  Tensor dy = f.backend->empty(f.y.shape());
  rng.fill(dy.f32(), dy.numel());
  f.layer->backward(f.ctx, f.x, f.y, dy, &f.dx);
  for (int64_t i = 0; i < f.x.numel(); ++i) ASSERT_EQ(f.dx.f32()[i], dy.f32()[i]) << i;
  check_layer_gradients(f);
}

TEST(GradientCheck, Flatten) {
  LayerFixture f("{name: f, type: flatten}", Shape{3, 2, 4}, 2);
  EXPECT_EQ(f.out_shape, (Shape{24}));
  check_random_input(f, 33);
}

// ---- linear -----------------------------------------------------------------------------

TEST(GradientCheck, LinearWithBias) {
  LayerFixture f("{name: fc, type: linear, outputs: 7}", Shape{13}, 5);
  EXPECT_EQ(f.out_shape, (Shape{7}));
  ASSERT_EQ(f.layer->params().size(), 2u);
  check_random_input(f, 40);
}

TEST(GradientCheck, LinearWithoutBias) {
  LayerFixture f("{name: fc, type: linear, outputs: 6, bias: false}", Shape{9}, 3);
  ASSERT_EQ(f.layer->params().size(), 1u);
  check_random_input(f, 41);
}

TEST(GradientCheck, LinearFromImageShapedInput) {
  // linear flattens a (C, H, W) input itself.
  LayerFixture f("{name: fc, type: linear, outputs: 4}", Shape{2, 3, 3}, 3);
  EXPECT_EQ(f.out_shape, (Shape{4}));
  check_random_input(f, 42);
}

TEST(GradientCheck, LinearModelParallelOneWorkerShard) {
  // The sharded code path (Layout::Sharded params, output kept a shard for the loss) with K = 1.
  LayerPlacement place;
  place.parallel = Parallel::Model;
  place.gather_output = false;
  LayerFixture f("{name: fc, type: linear, outputs: 5}", Shape{8}, 4, place);
  int64_t col0 = -1, total = -1;
  ASSERT_TRUE(f.layer->output_shard(&col0, &total));
  EXPECT_EQ(col0, 0);
  EXPECT_EQ(total, 5);
  EXPECT_EQ(f.layer->params()[0]->layout, Layout::Sharded);
  check_random_input(f, 43);
}

// ---- softmax cross-entropy ----------------------------------------------------------------

// Checks d(mean loss)/dlogits through forward_loss / backward_loss; the mean is over loss_rows.
void check_loss_gradient(int64_t rows, int64_t classes, int64_t loss_rows, float spread,
                         uint64_t seed) {
  LayerFixture f("{name: loss, type: softmax_cross_entropy}", Shape{classes}, rows);
  LossLayer* loss = f.layer->as_loss();
  ASSERT_NE(loss, nullptr);
  f.ctx.loss_rows = loss_rows;
  TestRng rng(seed);
  Tensor logits = f.x;
  rng.fill(logits.f32(), logits.numel(), -spread, spread);
  Tensor labels = f.backend->empty(Shape{rows}, DType::I32);
  for (int64_t r = 0; r < rows; ++r) labels.i32()[r] = static_cast<int32_t>(rng.index(classes));
  Tensor dlogits = f.backend->empty(logits.shape());
  loss->forward_loss(f.ctx, logits, labels);
  std::fill(dlogits.f32(), dlogits.f32() + dlogits.numel(), 777.f);
  loss->backward_loss(f.ctx, logits, labels, dlogits);
  std::vector<GradVar> vars{GradVar{"logits", logits.f32(), logits.numel(),
                                    std::vector<float>(dlogits.f32(), dlogits.f32() + dlogits.numel()),
                                    true}};
  // Each row's gradient sums to zero (softmax minus one-hot).
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < classes; ++c) s += vars[0].analytic[r * classes + c];
    EXPECT_NEAR(s, 0.0, 1e-5) << "row " << r;
  }
  auto objective = [&]() {
    return loss->forward_loss(f.ctx, logits, labels) / static_cast<double>(loss_rows);
  };
  GradCheckOptions opt;
  opt.abs_tol = 1e-4;  // gradients are O(1 / loss_rows)
  GradCheckStats st = check_gradients(vars, objective, opt);
  EXPECT_GT(st.checked, 0);
}

TEST(GradientCheck, SoftmaxCrossEntropyMeanLoss) {
  check_loss_gradient(4, 10, 4, 2.f, 50);
}

TEST(GradientCheck, SoftmaxCrossEntropyLargeLogits) {
  check_loss_gradient(3, 7, 3, 30.f, 51);
}

TEST(GradientCheck, SoftmaxCrossEntropyMeanOverGlobalBatch) {
  // This worker holds 4 rows of a global batch of 16: gradients are scaled by 1/16.
  check_loss_gradient(4, 5, 16, 2.f, 52);
}

TEST(GradientCheck, EveryRegisteredTypeIsChecked) {
  for (const auto& kv : layer_registry())
    EXPECT_TRUE(covered().count(kv.first)) << "layer type '" << kv.first
                                           << "' has no gradient check";
}

}  // namespace
}  // namespace owt::test
