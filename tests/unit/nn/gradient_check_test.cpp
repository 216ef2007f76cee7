// Finite-difference gradient checks of every registered layer type (docs/ARCHITECTURE.md, "Conventions"), driven by one
// table keyed by layer type (gradient_checks() below). Layer entries check the analytic backward
// (input and params) against central differences of L = sum(y * R) in double; loss entries check
// d(mean loss)/dlogits. ReLU skips inputs near its kink, max-pool inputs are spaced so no argmax
// flips. GradientCheckCoverage fails, naming the type, when a registered type has no entry or
// an entry names a type that is not registered.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "gradient_check.h"
#include "placement_helpers.h"

namespace owt::test {
namespace {

// ---- the kinds of entry -------------------------------------------------------------------

// How a layer case fills its input x.
struct InputFill {
  enum Kind {
    Uniform,            // U(lo, hi) from TestRng(seed)
    SpacedPermutation,  // a random permutation of a grid spaced 0.05 apart (> 2 * step): no
                        // max-pool window's argmax changes under a +-step perturbation
  } kind = Uniform;
  uint64_t seed = 0;
  float lo = -1.f, hi = 1.f;
};
InputFill uniform(uint64_t seed, float lo = -1.f, float hi = 1.f) {
  return {InputFill::Uniform, seed, lo, hi};
}
InputFill spaced_permutation(uint64_t seed) { return {InputFill::SpacedPermutation, seed}; }

GradCheckOptions all_up_to(int64_t n) {
  GradCheckOptions opt;
  opt.check_all_up_to = n;
  return opt;
}

// A non-loss layer on the CPU backend: check_layer_gradients on x and every param (which also
// checks that backward writes dx and accumulates param grads), after the case's own assertions.
struct LayerCheck {
  std::string name;  // the case, unique within its type
  std::string yaml;  // the layer mapping
  Shape input;       // one example's input shape
  int64_t rows;
  Shape output;      // the expected output shape of one example
  InputFill fill;
  GradCheckOptions opt = {};
  std::optional<std::vector<std::string>> params;  // the expected param names, in order
  TestPlacement place = TestPlacement::Data;
  bool training = true;
  std::function<void(LayerFixture&)> before;                          // after the fill
  std::function<void(LayerFixture&, const GradCheckStats&)> after;    // after the check

  LayerCheck(std::string name_, std::string yaml_, Shape in, int64_t rows_, Shape out,
             InputFill fill_)
      : name(std::move(name_)), yaml(std::move(yaml_)), input(std::move(in)), rows(rows_),
        output(std::move(out)), fill(fill_) {}
  LayerCheck& options(GradCheckOptions o) { opt = std::move(o); return *this; }
  LayerCheck& expect_params(std::vector<std::string> names) {
    params = std::move(names);
    return *this;
  }
  LayerCheck& placed(TestPlacement p) { place = p; return *this; }
  LayerCheck& inference() { training = false; return *this; }
  LayerCheck& before_check(std::function<void(LayerFixture&)> f) {
    before = std::move(f);
    return *this;
  }
  LayerCheck& after_check(std::function<void(LayerFixture&, const GradCheckStats&)> f) {
    after = std::move(f);
    return *this;
  }
};

// A loss layer: d(loss sum / loss_rows)/dlogits through forward_loss / backward_loss, logits
// U(-spread, spread) and random labels; each row's gradient must also sum to zero.
struct LossCheck {
  std::string name;
  std::string yaml;
  int64_t rows, classes;
  int64_t loss_rows;  // the global batch the mean is over (rows of this worker <= loss_rows)
  float spread;
  uint64_t seed;
};

// A layer of several inputs (add), each `input`-shaped, U(-1, 1): every input's gradient
// (dx[i] must be written; the input listed in `no_grad`, if any, gets a null dx) and every
// param's, L = sum(y * R).
struct InputsCheck {
  std::string name;
  std::string yaml;
  Shape input;
  size_t inputs;
  int64_t rows;
  uint64_t seed;
  int no_grad = -1;
};

using GradCheckCase = std::variant<LayerCheck, LossCheck, InputsCheck>;
const std::string& case_name(const GradCheckCase& c) {
  return std::visit([](const auto& x) -> const std::string& { return x.name; }, c);
}
const std::string& case_yaml(const GradCheckCase& c) {
  return std::visit([](const auto& x) -> const std::string& { return x.yaml; }, c);
}

// ---- the table ------------------------------------------------------------------------------

// Layer type -> its gradient checks. A registered type without an entry fails
// GradientCheckCoverage, so a new layer cannot arrive without one.
const std::map<std::string, std::vector<GradCheckCase>>& gradient_checks() {
  using Stats = const GradCheckStats&;
  static const std::map<std::string, std::vector<GradCheckCase>> table = {
      {"conv",
       {
           LayerCheck("Conv5x5Stride1Pad2", "{name: c, type: conv, filters: 4, size: 5, pad: 2}",
                      Shape{3, 8, 8}, 2, Shape{4, 8, 8}, uniform(1))
               .expect_params({"c.weight", "c.bias"})
               .after_check([](LayerFixture&, Stats st) {
                 EXPECT_EQ(st.checked, 200 + 200 + 4);  // x and weight: a subset; bias: all
               }),
           LayerCheck("Conv11x11Stride4Pad2",
                      "{name: c, type: conv, filters: 3, size: 11, stride: 4, pad: 2}",
                      Shape{3, 19, 19}, 2, Shape{3, 4, 4}, uniform(2)),
           LayerCheck("ConvNonSquareKernel",
                      "{name: c, type: conv, filters: 3, size_h: 3, size_w: 5, stride: 2, pad: 1}",
                      Shape{2, 7, 9}, 2, Shape{3, 4, 4},  // (7+2-3)/2+1, (9+2-5)/2+1
                      uniform(3)),
           LayerCheck("ConvWithoutBias",
                      "{name: c, type: conv, filters: 4, size: 3, pad: 1, bias: false}",
                      Shape{2, 6, 6}, 2, Shape{4, 6, 6}, uniform(4))
               .expect_params({"c.weight"}),
           // He init leaves a zero bias; the check still has to see the bias gradient.
           LayerCheck("ConvHeInit", "{name: c, type: conv, filters: 2, size: 3, init: he}",
                      Shape{2, 5, 5}, 3, Shape{2, 3, 3}, uniform(5)),
       }},
      {"maxpool",
       {
           LayerCheck("MaxPool2x2Stride2", "{name: p, type: maxpool, size: 2, stride: 2}",
                      Shape{3, 6, 6}, 2, Shape{3, 3, 3}, spaced_permutation(10))
               .after_check([](LayerFixture&, Stats st) {
                 EXPECT_EQ(st.checked, 216);  // small enough to check every input
               }),
           // Overlapping windows: an input that is the max of two windows gets both gradients.
           LayerCheck("MaxPoolOverlapping3x3Stride2",
                      "{name: p, type: maxpool, size: 3, stride: 2}",
                      Shape{2, 7, 7}, 2, Shape{2, 3, 3}, spaced_permutation(11))
               .options(all_up_to(1000)),
           LayerCheck("MaxPoolPadded", "{name: p, type: maxpool, size: 3, stride: 2, pad: 1}",
                      Shape{2, 6, 6}, 2, Shape{2, 3, 3}, spaced_permutation(12))
               .options(all_up_to(1000)),
       }},
      {"avgpool",
       {
           LayerCheck("AvgPool3x3Stride2Pad1",
                      "{name: p, type: avgpool, size: 3, stride: 2, pad: 1}",
                      Shape{2, 7, 7}, 2, Shape{2, 4, 4}, uniform(13))
               .options(all_up_to(1000)),
           LayerCheck("AvgPool2x2", "{name: p, type: avgpool, size: 2}", Shape{2, 4, 6}, 2,
                      Shape{2, 2, 3}, uniform(14)),
       }},
      {"lrn",
       {
           LayerCheck("LrnAlexNetParameters",
                      "{name: n, type: lrn, size: 5, alpha: 1.0e-4, beta: 0.75, k: 2}",
                      Shape{7, 3, 3}, 2, Shape{7, 3, 3}, uniform(20))
               .options(all_up_to(1000)),
           // alpha 0.1 (and k 1) makes the cross-channel term large enough that a wrong window
           // or a missing factor in the backward shows; inputs up to +-2 so x^2 matters.
           LayerCheck("LrnLargeAlpha",
                      "{name: n, type: lrn, size: 5, alpha: 0.1, beta: 0.75, k: 1}",
                      Shape{7, 3, 3}, 2, Shape{7, 3, 3}, uniform(21, -2.f, 2.f))
               .options(all_up_to(1000)),
           // Fewer channels than the window: every window is clipped at both ends.
           LayerCheck("LrnSize3FewChannels",
                      "{name: n, type: lrn, size: 3, alpha: 0.5, beta: 0.75, k: 1}",
                      Shape{2, 3, 2}, 3, Shape{2, 3, 2}, uniform(22, -2.f, 2.f)),
       }},
      {"relu",
       {
           LayerCheck("ReluSkipsKinks", "{name: r, type: relu}", Shape{5, 4, 4}, 2, Shape{5, 4, 4},
                      uniform(30))
               .options([] {
                 GradCheckOptions opt = all_up_to(1000);
                 opt.skip_input = [step = opt.step](const float* x, int64_t i) {
                   return std::fabs(x[i]) < 2 * step;
                 };
                 return opt;
               }())
               .after_check([](LayerFixture& f, Stats st) {
                 EXPECT_GT(st.skipped, 0);  // U(-1,1) puts ~2% of 160 inputs within 0.02 of 0
                 EXPECT_GT(st.checked, 120);
                 // Both sides of the kink are represented among the checked inputs.
                 int neg = 0, pos = 0;
                 for (int64_t i = 0; i < f.x.numel(); ++i) (f.x.f32()[i] < 0 ? neg : pos)++;
                 EXPECT_GT(neg, 20);
                 EXPECT_GT(pos, 20);
               }),
       }},
      {"dropout",
       {
           // The mask is keyed by (seed, step, row0): identical on every call.
           LayerCheck("DropoutTraining", "{name: d, type: dropout, rate: 0.4}", Shape{30}, 4,
                      Shape{30}, uniform(31))
               .after_check([](LayerFixture& f, Stats) {
                 // Some elements really were dropped.
                 f.forward();
                 int zeros = 0;
                 for (int64_t i = 0; i < f.y.numel(); ++i) zeros += f.y.f32()[i] == 0.f;
                 EXPECT_GT(zeros, 10);
                 EXPECT_LT(zeros, 90);
               }),
           LayerCheck("DropoutInferenceIsIdentity", "{name: d, type: dropout, rate: 0.5}",
                      Shape{6, 5}, 3, Shape{6, 5}, uniform(32))
               .inference()
               .before_check([](LayerFixture& f) {
                 f.forward();
                 for (int64_t i = 0; i < f.x.numel(); ++i)
                   ASSERT_EQ(f.y.f32()[i], f.x.f32()[i]) << i;
                 Tensor dy = f.backend->empty(f.y.shape());
                 TestRng(33).fill(dy.f32(), dy.numel());
                 f.layer->backward(f.ctx, f.x, f.y, dy, &f.dx);
                 for (int64_t i = 0; i < f.x.numel(); ++i)
                   ASSERT_EQ(f.dx.f32()[i], dy.f32()[i]) << i;
               }),
       }},
      {"flatten",
       {
           LayerCheck("Flatten", "{name: f, type: flatten}", Shape{3, 2, 4}, 2, Shape{24},
                      uniform(33)),
       }},
      {"linear",
       {
           LayerCheck("LinearWithBias", "{name: fc, type: linear, outputs: 7}", Shape{13}, 5,
                      Shape{7}, uniform(40))
               .expect_params({"fc.weight", "fc.bias"}),
           LayerCheck("LinearWithoutBias", "{name: fc, type: linear, outputs: 6, bias: false}",
                      Shape{9}, 3, Shape{6}, uniform(41))
               .expect_params({"fc.weight"}),
           // linear flattens a (C, H, W) input itself.
           LayerCheck("LinearFromImageShapedInput", "{name: fc, type: linear, outputs: 4}",
                      Shape{2, 3, 3}, 3, Shape{4}, uniform(42)),
           // The sharded code path (sharded params, output kept a shard for the loss) with K = 1.
           LayerCheck("LinearModelParallelOneWorkerShard", "{name: fc, type: linear, outputs: 5}",
                      Shape{8}, 4, Shape{5}, uniform(43))
               .placed(TestPlacement::ModelShardedOutput)
               .before_check([](LayerFixture& f) {
                 int64_t col0 = -1, total = -1;
                 ASSERT_TRUE(output_feature_shard(*f.layer, &col0, &total));
                 EXPECT_EQ(col0, 0);
                 EXPECT_EQ(total, 5);
                 EXPECT_TRUE(param_is_sharded(*f.layer->params()[0]));
               }),
       }},
      {"softmax_cross_entropy",
       {
           LossCheck{"SoftmaxCrossEntropyMeanLoss", "{name: loss, type: softmax_cross_entropy}",
                     4, 10, 4, 2.f, 50},
           LossCheck{"SoftmaxCrossEntropyLargeLogits", "{name: loss, type: softmax_cross_entropy}",
                     3, 7, 3, 30.f, 51},
           // This worker holds 4 rows of a global batch of 16: gradients are scaled by 1/16.
           LossCheck{"SoftmaxCrossEntropyMeanOverGlobalBatch",
                     "{name: loss, type: softmax_cross_entropy}", 4, 5, 16, 2.f, 52},
       }},
      {"batchnorm",
       {
           // Random gamma and beta, so a swapped or missing affine term shows; inputs U(-2, 2)
           // with an offset per element, so the mean is not zero.
           LayerCheck("BatchNorm2dTraining", "{name: bn, type: batchnorm}", Shape{3, 4, 4}, 2,
                      Shape{3, 4, 4}, uniform(60, -2.f, 3.f))
               .expect_params({"bn.weight", "bn.bias"})
               .before_check([](LayerFixture& f) {
                 TestRng rng(61);
                 rng.fill(f.layer->params()[0]->value.f32(), 3, 0.5f, 1.5f);
                 rng.fill(f.layer->params()[1]->value.f32(), 3, -1.f, 1.f);
               })
               .after_check([](LayerFixture&, Stats st) {
                 EXPECT_EQ(st.checked, 96 + 3 + 3);  // every element of x and both params
               }),
           LayerCheck("BatchNorm1dTraining", "{name: bn, type: batchnorm, eps: 0.001}", Shape{5},
                      6, Shape{5}, uniform(62, -1.f, 2.f))
               .expect_params({"bn.weight", "bn.bias"})
               .before_check([](LayerFixture& f) {
                 TestRng rng(63);
                 rng.fill(f.layer->params()[0]->value.f32(), 5, 0.5f, 1.5f);
                 rng.fill(f.layer->params()[1]->value.f32(), 5, -1.f, 1.f);
               }),
       }},
      {"global_avgpool",
       {
           LayerCheck("GlobalAvgPool", "{name: gap, type: global_avgpool}", Shape{3, 3, 5}, 2,
                      Shape{3}, uniform(64))
               .after_check([](LayerFixture& f, Stats) {
                 // y[n, c] is the plain mean of its plane.
                 f.forward();
                 for (int64_t p = 0; p < 6; ++p) {
                   double mean = 0;
                   for (int64_t i = 0; i < 15; ++i) mean += f.x.f32()[p * 15 + i] / 15.0;
                   EXPECT_NEAR(f.y.f32()[p], mean, 1e-6) << "plane " << p;
                 }
               }),
       }},
      {"add",
       {
           InputsCheck{"AddTwo", "{name: sum, type: add}", Shape{2, 3, 3}, 2, 3, 70},
           InputsCheck{"AddThreeFirstWithoutGradient", "{name: sum, type: add}", Shape{7}, 3, 2,
                       71, 0},
       }},
  };
  return table;
}

// ---- running an entry -----------------------------------------------------------------------

void fill_input(LayerFixture& f, const InputFill& fill) {
  TestRng rng(fill.seed);
  if (fill.kind == InputFill::Uniform) {
    rng.fill(f.x.f32(), f.x.numel(), fill.lo, fill.hi);
    return;
  }
  std::vector<int64_t> perm = rng.permutation(f.x.numel());
  for (int64_t i = 0; i < f.x.numel(); ++i)
    f.x.f32()[i] = 0.05f * static_cast<float>(perm[i] - f.x.numel() / 2);
}

void run_check(const std::string& type, const LayerCheck& c) {
  LayerFixture f(c.yaml, c.input, c.rows, layer_placement(c.place));
  ASSERT_EQ(f.layer->type(), type) << "the entry of '" << type << "' builds another type";
  ASSERT_EQ(f.layer->as_loss(), nullptr) << type << " is a loss layer: give it a LossCheck";
  EXPECT_EQ(f.out_shape, c.output);
  if (c.params) {
    std::vector<std::string> names;
    for (Param* p : f.layer->params()) names.push_back(p->name);
    ASSERT_EQ(names, *c.params);
  }
  f.ctx.training = c.training;
  fill_input(f, c.fill);
  if (c.before) {
    c.before(f);
    if (::testing::Test::HasFatalFailure()) return;
  }
  GradCheckStats st = check_layer_gradients(f, c.opt);
  if (c.after) c.after(f, st);
}

void run_check(const std::string& type, const LossCheck& c) {
  LayerFixture f(c.yaml, Shape{c.classes}, c.rows);
  ASSERT_EQ(f.layer->type(), type) << "the entry of '" << type << "' builds another type";
  LossLayer* loss = f.layer->as_loss();
  ASSERT_NE(loss, nullptr) << type << " is not a loss layer: give it a LayerCheck";
  f.ctx.loss_rows = c.loss_rows;
  TestRng rng(c.seed);
  Tensor logits = f.x;
  rng.fill(logits.f32(), logits.numel(), -c.spread, c.spread);
  Tensor labels = f.backend->empty(Shape{c.rows}, DType::I32);
  for (int64_t r = 0; r < c.rows; ++r) labels.i32()[r] = static_cast<int32_t>(rng.index(c.classes));
  Tensor dlogits = f.backend->empty(logits.shape());
  loss->forward_loss(f.ctx, logits, labels);
  std::fill(dlogits.f32(), dlogits.f32() + dlogits.numel(), 777.f);
  loss->backward_loss(f.ctx, logits, labels, dlogits);
  std::vector<GradVar> vars{
      GradVar{"logits", logits.f32(), logits.numel(),
              std::vector<float>(dlogits.f32(), dlogits.f32() + dlogits.numel()), true}};
  // Each row's gradient sums to zero (softmax minus one-hot).
  for (int64_t r = 0; r < c.rows; ++r) {
    double s = 0;
    for (int64_t k = 0; k < c.classes; ++k) s += vars[0].analytic[r * c.classes + k];
    EXPECT_NEAR(s, 0.0, 1e-5) << "row " << r;
  }
  auto objective = [&]() {
    return loss->forward_loss(f.ctx, logits, labels) / static_cast<double>(c.loss_rows);
  };
  GradCheckOptions opt;
  opt.abs_tol = 1e-4;  // gradients are O(1 / loss_rows)
  GradCheckStats st = check_gradients(vars, objective, opt);
  EXPECT_GT(st.checked, 0);
}

void run_check(const std::string& type, const InputsCheck& c) {
  auto backend = make_cpu_backend();
  auto comm = make_local_communicator();
  RunContext ctx{*backend, *comm};
  ctx.global_rows = ctx.loss_rows = c.rows;
  auto layer = layer_from_yaml(c.yaml);
  ASSERT_EQ(layer->type(), type) << "the entry of '" << type << "' builds another type";
  ASSERT_GE(layer->max_inputs(), c.inputs);
  const Shape out = layer->setup_inputs(std::vector<Shape>(c.inputs, c.input),
                                        layer_placement(TestPlacement::Data));
  ParamStore store(layer->params(), layer->buffers(), *backend);
  for (Param* p : layer->params()) initialize_param(*p, 7, *backend);
  TestRng rng(c.seed);
  std::vector<Tensor> x, dx;
  for (size_t i = 0; i < c.inputs; ++i) {
    x.push_back(backend->empty(c.input.with_batch(c.rows)));
    dx.push_back(backend->empty(c.input.with_batch(c.rows)));
    rng.fill(x[i].f32(), x[i].numel());
    std::fill(dx[i].f32(), dx[i].f32() + dx[i].numel(), 777.f);
  }
  Tensor y = backend->empty(out.with_batch(c.rows)), r = backend->empty(y.shape());
  rng.fill(r.f32(), r.numel());
  std::vector<Tensor*> dx_ptrs;
  for (size_t i = 0; i < c.inputs; ++i)
    dx_ptrs.push_back(static_cast<int>(i) == c.no_grad ? nullptr : &dx[i]);
  layer->forward_inputs(ctx, x, y);
  layer->backward_inputs(ctx, x, y, r, dx_ptrs);
  std::vector<GradVar> vars;
  for (size_t i = 0; i < c.inputs; ++i) {
    if (!dx_ptrs[i]) {  // untouched
      EXPECT_EQ(dx[i].f32()[0], 777.f) << "input " << i + 1 << " has no dx but it was written";
      continue;
    }
    vars.push_back(GradVar{cat("x", i + 1), x[i].f32(), x[i].numel(),
                           std::vector<float>(dx[i].f32(), dx[i].f32() + dx[i].numel()), true});
  }
  for (Param* p : layer->params())
    vars.push_back(GradVar{p->name, p->value.f32(), p->value.numel(),
                           std::vector<float>(p->grad.f32(), p->grad.f32() + p->grad.numel())});
  auto objective = [&]() {
    layer->forward_inputs(ctx, x, y);
    return dot_double(y.f32(), r.f32(), y.numel());
  };
  GradCheckStats st = check_gradients(vars, objective, GradCheckOptions{});
  EXPECT_GT(st.checked, 0);
}

// One gtest per case of the table: Layers/GradientCheck.Table/<type>_<case>.
struct TableCase {
  std::string type;
  const GradCheckCase* check;
};
void PrintTo(const TableCase& c, std::ostream* os) { *os << c.type << "/" << case_name(*c.check); }

std::vector<TableCase> table_cases() {
  std::vector<TableCase> cases;
  for (const auto& kv : gradient_checks())
    for (const GradCheckCase& c : kv.second) cases.push_back({kv.first, &c});
  return cases;
}

class GradientCheck : public ::testing::TestWithParam<TableCase> {};

TEST_P(GradientCheck, Table) {
  const TableCase& c = GetParam();
  std::visit([&](const auto& check) { run_check(c.type, check); }, *c.check);
}

INSTANTIATE_TEST_SUITE_P(Layers, GradientCheck, ::testing::ValuesIn(table_cases()),
                         [](const ::testing::TestParamInfo<TableCase>& info) {
                           return info.param.type + "_" + case_name(*info.param.check);
                         });

// ---- coverage -------------------------------------------------------------------------------

TEST(GradientCheckCoverage, EveryRegisteredTypeHasAnEntry) {
  ASSERT_FALSE(layer_registry().empty());
  for (const auto& kv : layer_registry()) {
    auto it = gradient_checks().find(kv.first);
    EXPECT_TRUE(it != gradient_checks().end() && !it->second.empty())
        << "layer type '" << kv.first << "' is registered but has no gradient check: add an "
        << "entry for it to gradient_checks() in tests/unit/nn/gradient_check_test.cpp";
  }
}

TEST(GradientCheckCoverage, EveryEntryIsARegisteredTypeOfTheRightKind) {
  for (const auto& kv : gradient_checks()) {
    if (!layer_registry().count(kv.first)) {
      ADD_FAILURE() << "gradient_checks() has an entry for '" << kv.first
                    << "', which is not a registered layer type";
      continue;
    }
    std::set<std::string> names;
    for (const GradCheckCase& c : kv.second) {
      SCOPED_TRACE(kv.first + "/" + case_name(c));
      EXPECT_TRUE(names.insert(case_name(c)).second) << "duplicate case name";
      // Each case builds the type it is filed under; loss layers have loss entries.
      auto layer = layer_from_yaml(case_yaml(c));
      EXPECT_EQ(layer->type(), kv.first);
      EXPECT_EQ(layer->as_loss() != nullptr, std::holds_alternative<LossCheck>(c));
    }
  }
}

}  // namespace
}  // namespace owt::test
