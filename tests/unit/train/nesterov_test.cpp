// SgdOptimizer with solver.nesterov: against a scalar loop of PyTorch's SGD(nesterov=True) over
// three steps with weight decay, lr_mult and wd_mult, against numbers from PyTorch itself, and
// the plain (non-Nesterov) update left bit for bit as it was.
#include <gtest/gtest.h>

#include <vector>

#include "owt/core/philox.h"
#include "owt/nn/init.h"
#include "owt/nn/param_store.h"
#include "owt/train/optimizer.h"

namespace owt {
namespace {

float uniform(uint32_t i, uint32_t stream) {
  return 2.f * philox_uniform(rng_key(23, Purpose::Test), i, stream, 0, 0) - 1.f;
}

SolverConfig nesterov_solver(double momentum, double weight_decay) {
  SolverConfig s;
  s.momentum = momentum;
  s.weight_decay = weight_decay;
  s.nesterov = true;
  return s;
}

TEST(Nesterov, MatchesAScalarLoopOverThreeSteps) {
  auto be = make_cpu_backend();
  const SolverConfig solver = nesterov_solver(0.9, 5e-3);
  Param a = make_replicated_param("a.weight", Shape{4, 5}, InitSpec{});
  Param b = make_replicated_param("b.bias", Shape{7}, InitSpec{});
  b.lr_mult = 2.f;
  b.wd_mult = 0.f;
  Param d = make_sharded_param("d.weight", Shape{6, 2}, 0, 1, 2, InitSpec{});
  d.wd_mult = 3.f;
  std::vector<Param*> params = {&a, &b, &d};
  ParamStore store(params, *be);

  std::vector<std::vector<float>> w(params.size()), v(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    Param* p = params[k];
    for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = uniform(i, 100 + k);
    w[k].assign(p->value.f32(), p->value.f32() + p->value.numel());
    v[k].assign(p->value.numel(), 0.f);
  }
  SgdOptimizer opt(solver);
  const double lrs[] = {0.1, 0.05, 0.2};
  for (int step = 0; step < 3; ++step) {
    for (size_t k = 0; k < params.size(); ++k) {
      Param* p = params[k];
      for (int64_t i = 0; i < p->grad.numel(); ++i) p->grad.f32()[i] = uniform(i, 1000 * step + k);
      // PyTorch SGD(nesterov=True): g' = g + wd w; v = mu v + g'; w -= lr (g' + mu v).
      const float lr = static_cast<float>(lrs[step] * p->lr_mult);
      const float wd = static_cast<float>(solver.weight_decay * p->wd_mult);
      const float mu = static_cast<float>(solver.momentum);
      for (int64_t i = 0; i < p->grad.numel(); ++i) {
        const float g = p->grad.f32()[i] + wd * w[k][i];
        v[k][i] = mu * v[k][i] + g;
        w[k][i] -= lr * (g + mu * v[k][i]);
      }
    }
    opt.step(params, lrs[step], *be);
  }
  for (size_t k = 0; k < params.size(); ++k) {
    Param* p = params[k];
    for (int64_t i = 0; i < p->value.numel(); ++i) {
      EXPECT_NEAR(p->value.f32()[i], w[k][i], 1e-6) << p->name << "[" << i << "]";
      EXPECT_NEAR(p->state.f32()[i], v[k][i], 1e-6) << p->name << " momentum [" << i << "]";
    }
  }
}

// torch.optim.SGD([w], lr, momentum=0.9, weight_decay=0.01, nesterov=True) in float64, the
// learning rate set to 0.1, 0.05, 0.2 before the three steps.
TEST(Nesterov, MatchesPyTorch) {
  auto be = make_cpu_backend();
  Param w = make_replicated_param("w", Shape{3}, InitSpec{});
  std::vector<Param*> params = {&w};
  ParamStore store(params, *be);
  const float w0[] = {0.5f, -1.25f, 2.f};
  const float grads[3][3] = {{0.3f, -0.2f, 0.1f}, {-0.4f, 0.25f, 0.05f}, {0.1f, 0.1f, -0.3f}};
  const double lrs[] = {0.1, 0.05, 0.2};
  std::copy(w0, w0 + 3, w.value.f32());
  SgdOptimizer opt(nesterov_solver(0.9, 0.01));
  for (int step = 0; step < 3; ++step) {
    std::copy(grads[step], grads[step] + 3, w.grad.f32());
    opt.step(params, lrs[step], *be);
  }
  const double want_w[] = {0.4471167768, -1.2645277592, 2.0434428917};
  const double want_v[] = {-0.0042987745, 0.1297521789, -0.1203480834};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(w.value.f32()[i], want_w[i], 1e-6) << "w[" << i << "]";
    EXPECT_NEAR(w.state.f32()[i], want_v[i], 1e-6) << "momentum [" << i << "]";
  }
}

// Without nesterov the update is the one owt always made, bit for bit.
TEST(Nesterov, PlainUpdateUnchanged) {
  const SgdStep plain{0.05f, 0.9f, 5e-4f};
  ASSERT_FALSE(plain.nesterov);
  for (uint32_t i = 0; i < 1000; ++i) {
    float w = uniform(i, 1), v = uniform(i, 2), g = uniform(i, 3);
    float want_w = w, want_v = v;
    const float gw = g + plain.weight_decay * want_w;
    want_v = plain.momentum * want_v + gw;
    want_w -= plain.lr * want_v;
    sgd_one(plain, &w, g, &v);
    ASSERT_EQ(w, want_w) << i;
    ASSERT_EQ(v, want_v) << i;
  }
}

// Nesterov moves the weights differently from plain momentum once there is momentum to look
// ahead with (a step that ignored the flag would pass neither test above and fail here too).
TEST(Nesterov, DiffersFromPlainMomentum) {
  SgdStep plain{0.1f, 0.9f, 0.f}, nesterov{0.1f, 0.9f, 0.f, true};
  float wp = 1.f, vp = 0.5f, wn = 1.f, vn = 0.5f;
  sgd_one(plain, &wp, 0.2f, &vp);
  sgd_one(nesterov, &wn, 0.2f, &vn);
  EXPECT_EQ(vp, vn);                              // the same velocity: 0.9 * 0.5 + 0.2
  EXPECT_FLOAT_EQ(wp, 1.f - 0.1f * 0.65f);        // w -= lr v
  EXPECT_FLOAT_EQ(wn, 1.f - 0.1f * (0.2f + 0.9f * 0.65f));  // w -= lr (g + mu v)
}

}  // namespace
}  // namespace owt
