// SgdOptimizer against a scalar loop (momentum, weight decay, lr_mult, wd_mult, frozen params)
// and LrSchedule's warm-up ramp, cosine endpoints and step milestones.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "owt/core/philox.h"
#include "owt/nn/init.h"
#include "owt/nn/param_store.h"
#include "owt/train/optimizer.h"

namespace owt {
namespace {

float uniform(uint32_t i, uint32_t stream) {
  return 2.f * philox_uniform(rng_key(17, Purpose::Test), i, stream, 0, 0) - 1.f;
}

struct Reference {
  std::vector<float> w, v;
};

TEST(SgdOptimizer, MatchesAScalarLoop) {
  auto be = make_cpu_backend();
  SolverConfig solver;
  solver.momentum = 0.9;
  solver.weight_decay = 5e-3;
  Param a = make_replicated_param("a.weight", Shape{4, 5}, InitSpec{});
  Param b = make_replicated_param("b.bias", Shape{7}, InitSpec{});
  b.lr_mult = 2.f;
  b.wd_mult = 0.f;
  Param c = make_replicated_param("c.weight", Shape{3, 3}, InitSpec{});
  c.frozen = true;
  Param d = make_sharded_param("d.weight", Shape{6, 2}, 0, 1, 2, InitSpec{});
  d.lr_mult = 0.5f;
  d.wd_mult = 3.f;
  std::vector<Param*> params = {&a, &b, &c, &d};
  ParamStore store(params, *be);

  std::vector<Reference> ref(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    Param* p = params[k];
    for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = uniform(i, 100 + k);
    ref[k].w.assign(p->value.f32(), p->value.f32() + p->value.numel());
    ref[k].v.assign(p->value.numel(), 0.f);
  }
  SgdOptimizer opt(solver);
  const double lrs[] = {0.1, 0.05, 0.2};
  for (int step = 0; step < 3; ++step) {
    for (size_t k = 0; k < params.size(); ++k) {
      Param* p = params[k];
      for (int64_t i = 0; i < p->grad.numel(); ++i) p->grad.f32()[i] = uniform(i, 1000 * step + k);
      if (p->frozen) continue;
      // PyTorch SGD: g' = g + wd * w; v = mu * v + g'; w -= lr * v.
      const float lr = static_cast<float>(lrs[step] * p->lr_mult);
      const float wd = static_cast<float>(solver.weight_decay * p->wd_mult);
      const float mu = static_cast<float>(solver.momentum);
      for (int64_t i = 0; i < p->grad.numel(); ++i) {
        float g = p->grad.f32()[i] + wd * ref[k].w[i];
        ref[k].v[i] = mu * ref[k].v[i] + g;
        ref[k].w[i] -= lr * ref[k].v[i];
      }
    }
    opt.step(params, lrs[step], *be);
  }
  for (size_t k = 0; k < params.size(); ++k) {
    Param* p = params[k];
    for (int64_t i = 0; i < p->value.numel(); ++i) {
      EXPECT_NEAR(p->value.f32()[i], ref[k].w[i], 1e-6) << p->name << "[" << i << "]";
      EXPECT_NEAR(p->state.f32()[i], ref[k].v[i], 1e-6) << p->name << " momentum [" << i << "]";
    }
  }
  // The frozen param never moved, and its momentum stayed zero.
  for (int64_t i = 0; i < c.value.numel(); ++i) {
    EXPECT_EQ(c.value.f32()[i], uniform(i, 102));
    EXPECT_EQ(c.state.f32()[i], 0.f);
  }
}

TEST(SgdOptimizer, FirstStepWithoutMomentumIsPlainGradientDescent) {
  auto be = make_cpu_backend();
  SolverConfig solver;
  solver.momentum = 0;
  solver.weight_decay = 0.1;
  Param p = make_replicated_param("p", Shape{3}, InitSpec{});
  p.wd_mult = 0.5f;
  ParamStore store({&p}, *be);
  const float w0[3] = {1.f, -2.f, 0.5f}, g[3] = {0.5f, 0.25f, -1.f};
  std::copy(w0, w0 + 3, p.value.f32());
  std::copy(g, g + 3, p.grad.f32());
  SgdOptimizer(solver).step({&p}, 0.1, *be);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(p.value.f32()[i], w0[i] - 0.1f * (g[i] + 0.05f * w0[i]), 1e-7) << i;
}

SolverConfig schedule_solver(const std::string& type, double warmup, double lr = 0.1) {
  SolverConfig s;
  s.lr = lr;
  s.schedule.type = type;
  s.schedule.warmup_epochs = warmup;
  return s;
}

TEST(LrSchedule, ConstantWithLinearWarmup) {
  // 2 warm-up epochs of 10 steps: step s < 20 gets lr * (s + 1) / 20, then lr.
  LrSchedule sch(schedule_solver("constant", 2), 10, 100);
  for (int s = 0; s < 20; ++s) EXPECT_NEAR(sch.at(s), 0.1 * (s + 1) / 20.0, 1e-12) << s;
  EXPECT_GT(sch.at(0), 0.0);
  for (int s = 1; s < 20; ++s) EXPECT_NEAR(sch.at(s) - sch.at(s - 1), 0.1 / 20, 1e-12) << s;
  for (int s = 20; s < 100; ++s) EXPECT_DOUBLE_EQ(sch.at(s), 0.1) << s;
  LrSchedule none(schedule_solver("constant", 0), 10, 100);
  EXPECT_DOUBLE_EQ(none.at(0), 0.1);
}

TEST(LrSchedule, FractionalWarmupNeverExceedsTheBaseLr) {
  // warmup_epochs 0.25 of 10 steps = 2.5 warm-up steps: steps 0, 1, 2 ramp, and step 2 must not
  // get 3 / 2.5 = 1.2 times the base lr.
  for (const char* type : {"constant", "cosine", "step"}) {
    SolverConfig s = schedule_solver(type, 0.25);
    s.schedule.milestones = {100};
    LrSchedule sch(s, 10, 100);
    for (int st = 0; st < 100; ++st) EXPECT_LE(sch.at(st), 0.1 * (1 + 1e-12)) << type << " step " << st;
    EXPECT_LT(sch.at(0), sch.at(1)) << type;
  }
}

TEST(LrSchedule, CosineEndpoints) {
  SolverConfig s = schedule_solver("cosine", 1);
  s.schedule.min_lr = 0.001;
  LrSchedule sch(s, 10, 100);
  EXPECT_NEAR(sch.at(0), 0.1 / 10, 1e-12);      // warm-up
  EXPECT_NEAR(sch.at(9), 0.1, 1e-12);           // end of the ramp
  EXPECT_NEAR(sch.at(10), 0.1, 1e-9);           // first post-warm-up step: the base lr
  EXPECT_NEAR(sch.at(99), 0.001, 1e-4);         // last step: the floor
  EXPECT_GE(sch.at(99), 0.001);
  EXPECT_NEAR(sch.at(55), (0.1 + 0.001) / 2, 1e-9);  // half-way through the decay
  for (int st = 11; st < 100; ++st) EXPECT_LE(sch.at(st), sch.at(st - 1)) << st;
  // Past the end it stays at the floor.
  EXPECT_NEAR(sch.at(150), 0.001, 1e-12);
  // No warm-up: step 0 is the base lr.
  SolverConfig s0 = schedule_solver("cosine", 0);
  LrSchedule sch0(s0, 10, 50);
  EXPECT_NEAR(sch0.at(0), 0.1, 1e-12);
  EXPECT_NEAR(sch0.at(49), 0.0, 2e-4);
}

TEST(LrSchedule, StepMilestones) {
  SolverConfig s = schedule_solver("step", 0);
  s.schedule.milestones = {2, 4};
  s.schedule.gamma = 0.1;
  LrSchedule sch(s, 10, 60);
  EXPECT_DOUBLE_EQ(sch.at(0), 0.1);
  EXPECT_DOUBLE_EQ(sch.at(19), 0.1);
  EXPECT_NEAR(sch.at(20), 0.01, 1e-15);
  EXPECT_NEAR(sch.at(39), 0.01, 1e-15);
  EXPECT_NEAR(sch.at(40), 0.001, 1e-15);
  EXPECT_NEAR(sch.at(59), 0.001, 1e-15);
  // With a warm-up, the ramp comes first.
  s.schedule.warmup_epochs = 1;
  LrSchedule warm(s, 10, 60);
  EXPECT_NEAR(warm.at(0), 0.01, 1e-12);
  EXPECT_NEAR(warm.at(10), 0.1, 1e-12);
  EXPECT_NEAR(warm.at(20), 0.01, 1e-15);
}

}  // namespace
}  // namespace owt
