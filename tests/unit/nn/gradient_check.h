// Layer test harness for owt_nn_tests: builds one layer from a YAML snippet on the CPU backend,
// binds its params, and checks analytic gradients against central differences of a double
// objective (Caffe's test_gradient_check_util.hpp, kink-aware through a per-element skip).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/core/config_map.h"
#include "owt/core/philox.h"
#include "owt/nn/init.h"
#include "owt/nn/layer.h"
#include "owt/nn/param_store.h"
#include "owt/nn/registry.h"

namespace owt::test {

// Deterministic test randomness from Philox (portable, unlike std:: distributions).
class TestRng {
 public:
  explicit TestRng(uint64_t seed) : key_(rng_key(seed, Purpose::Test)) {}
  uint32_t bits() {
    ++counter_;
    return philox4x32(counter_, static_cast<uint32_t>(counter_ >> 32), 0x5eed, 0, key_.k0, key_.k1)
        .v[0];
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform01(bits()); }
  int64_t index(int64_t n) { return static_cast<int64_t>(bits() % static_cast<uint64_t>(n)); }
  void fill(float* x, int64_t n, float lo = -1.f, float hi = 1.f) {
    for (int64_t i = 0; i < n; ++i) x[i] = uniform(lo, hi);
  }
  // A random permutation of 0..n-1.
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(n);
    for (int64_t i = 0; i < n; ++i) p[i] = i;
    for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[index(i + 1)]);
    return p;
  }

 private:
  RngKey key_;
  uint64_t counter_ = 0;
};

// One layer mapping parsed from YAML (as network.cpp does: make_layer, then check_all_used).
inline std::unique_ptr<Layer> layer_from_yaml(const std::string& yaml,
                                              const std::string& file = "test.yaml") {
  YAML::Node node = load_yaml_string(yaml, file);
  ConfigMap cfg(node, file, "layer");
  auto layer = make_layer(cfg);
  cfg.check_all_used();
  return layer;
}

// A layer on the CPU backend with bound, initialised params and (rows, ...) x, y, dx tensors.
struct LayerFixture {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  std::unique_ptr<Communicator> comm = make_local_communicator();
  RunContext ctx{*backend, *comm};
  std::unique_ptr<Layer> layer;
  std::unique_ptr<ParamStore> store;
  Shape in_shape, out_shape;  // one example
  int64_t rows = 0;
  Tensor x, y, dx;            // (rows, in...), (rows, out...), (rows, in...)

  LayerFixture(const std::string& yaml, const Shape& in, int64_t rows_,
               const LayerPlacement& place = LayerPlacement{}, uint64_t init_seed = 7)
      : layer(layer_from_yaml(yaml)), in_shape(in), rows(rows_) {
    out_shape = layer->setup(in_shape, place);
    store = std::make_unique<ParamStore>(layer->params(), layer->buffers(), *backend);
    for (Param* p : layer->params()) initialize_param(*p, init_seed, *backend);
    for (Param* b : layer->buffers()) initialize_param(*b, init_seed, *backend);
    x = backend->empty(in_shape.with_batch(rows));
    y = backend->empty(out_shape.with_batch(rows));
    dx = backend->empty(in_shape.with_batch(rows));
    ctx.training = true;
    ctx.seed = 1234;
    ctx.step = 3;
    ctx.row0 = 0;
    ctx.loss_rows = rows;
    ctx.global_rows = rows;  // one worker: its rows are the global batch
  }
  void forward() { layer->forward(ctx, x, y); }
};

// The objective is L = sum(y * R) in double; its gradient is R pushed back through the layer.
struct GradCheckOptions {
  double step = 1e-2;
  double rel_tol = 1e-2;
  double abs_tol = 1e-3;
  int64_t check_all_up_to = 256;  // tensors up to this size: every element; larger: a subset
  int64_t subset = 200;
  uint64_t seed = 99;
  // Input elements to skip (kinks: the numeric derivative straddles a non-differentiable point).
  std::function<bool(const float* x, int64_t i)> skip_input;
};

// A variable of the objective: memory the checker perturbs in place, and its analytic gradient.
struct GradVar {
  std::string name;
  float* value;
  int64_t n;
  std::vector<float> analytic;
  bool is_input = false;
};

struct GradCheckStats {
  int64_t checked = 0, skipped = 0, failed = 0;
};

// Central differences of `objective` at every checked element of every var vs var.analytic.
inline GradCheckStats check_gradients(std::vector<GradVar>& vars,
                                      const std::function<double()>& objective,
                                      const GradCheckOptions& opt) {
  GradCheckStats st;
  TestRng rng(opt.seed);
  for (GradVar& v : vars) {
    std::vector<int64_t> idx;
    if (v.n <= opt.check_all_up_to) {
      for (int64_t i = 0; i < v.n; ++i) idx.push_back(i);
    } else {
      std::vector<int64_t> perm = rng.permutation(v.n);
      idx.assign(perm.begin(), perm.begin() + std::min(opt.subset, v.n));
    }
    for (int64_t i : idx) {
      if (v.is_input && opt.skip_input && opt.skip_input(v.value, i)) {
        ++st.skipped;
        continue;
      }
      const float saved = v.value[i];
      v.value[i] = static_cast<float>(saved + opt.step);
      const double lp = objective();
      v.value[i] = static_cast<float>(saved - opt.step);
      const double lm = objective();
      v.value[i] = saved;
      // The actual float step, not the nominal one (saved +- step rounds).
      const double h = (static_cast<double>(static_cast<float>(saved + opt.step)) -
                        static_cast<double>(static_cast<float>(saved - opt.step)));
      const double numeric = (lp - lm) / h;
      const double analytic = v.analytic[i];
      const double err = std::fabs(analytic - numeric);
      const double scale = std::max(std::fabs(analytic), std::fabs(numeric));
      ++st.checked;
      if (!(err <= opt.abs_tol || err <= opt.rel_tol * scale)) {
        if (++st.failed <= 8)
          ADD_FAILURE() << v.name << "[" << i << "]: analytic " << analytic << " numeric "
                        << numeric << " (abs err " << err << ", rel err " << err / scale << ")";
      }
    }
  }
  if (st.failed > 8) ADD_FAILURE() << st.failed << " gradient elements differ in all";
  return st;
}

inline double dot_double(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

// The whole check for a non-loss layer: the input and every param, L = sum(y * R).
// Also checks the backward contract: dx is written (a sentinel in dx is overwritten) and param
// gradients accumulate (a second backward without zeroing doubles them).
inline GradCheckStats check_layer_gradients(LayerFixture& f, const GradCheckOptions& opt = {}) {
  Backend& be = *f.backend;
  TestRng rng(opt.seed + 1);
  Tensor r = be.empty(f.y.shape());
  rng.fill(r.f32(), r.numel());

  // Analytic.
  f.store->zero_grads(be);
  f.forward();
  std::fill(f.dx.f32(), f.dx.f32() + f.dx.numel(), 777.f);
  f.layer->backward(f.ctx, f.x, f.y, r, &f.dx);
  std::vector<GradVar> vars;
  vars.push_back(GradVar{"x", f.x.f32(), f.x.numel(),
                         std::vector<float>(f.dx.f32(), f.dx.f32() + f.dx.numel()), true});
  for (Param* p : f.layer->params())
    vars.push_back(GradVar{p->name, p->value.f32(), p->value.numel(),
                           std::vector<float>(p->grad.f32(), p->grad.f32() + p->grad.numel()),
                           false});

  // Contract: a second backward writes the same dx and doubles the param grads.
  std::fill(f.dx.f32(), f.dx.f32() + f.dx.numel(), -555.f);
  f.layer->backward(f.ctx, f.x, f.y, r, &f.dx);
  for (int64_t i = 0; i < f.dx.numel(); ++i)
    if (f.dx.f32()[i] != vars[0].analytic[i]) {
      ADD_FAILURE() << f.layer->type() << ": dx[" << i << "] is not written by backward (got "
                    << f.dx.f32()[i] << ", first pass " << vars[0].analytic[i] << ")";
      break;
    }
  size_t k = 1;
  for (Param* p : f.layer->params()) {
    const std::vector<float>& g1 = vars[k++].analytic;
    for (int64_t i = 0; i < p->grad.numel(); ++i) {
      double want = 2.0 * g1[i], got = p->grad.f32()[i];
      if (std::fabs(got - want) > 1e-5 * (1 + std::fabs(want))) {
        ADD_FAILURE() << p->name << ".grad[" << i << "] does not accumulate: after two backward "
                      << "passes " << got << ", expected " << want;
        break;
      }
    }
  }
  f.store->zero_grads(be);

  auto objective = [&]() {
    f.forward();
    return dot_double(f.y.f32(), r.f32(), f.y.numel());
  };
  GradCheckStats st = check_gradients(vars, objective, opt);
  EXPECT_GT(st.checked, 0);
  return st;
}

}  // namespace owt::test
