// The batchnorm layer against a naive double-precision reference: training forward, running
// statistics after two steps (PyTorch's formula, unbiased running variance), evaluation with the
// running statistics, its params and buffers; and K workers on threads (sync: true) equal one
// worker with all their rows, including a worker with no rows. Gradients: gradient_check_test.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "gradient_check.h"
#include "placement_helpers.h"
#include "thread_comm.h"
#include "support/expect_error.h"

namespace owt::test {
namespace {

// ---- naive reference ------------------------------------------------------------------------

// Per-channel mean and biased variance of x (rows, C, HW), in double.
struct Moments {
  std::vector<double> mean, var;
  int64_t count = 0;  // values per channel
};
Moments moments(const float* x, int64_t rows, int64_t c, int64_t hw) {
  Moments m{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0), rows * hw};
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t i = 0; i < hw; ++i) m.mean[ch] += x[(n * c + ch) * hw + i];
    m.mean[ch] /= static_cast<double>(m.count);
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const double d = x[(n * c + ch) * hw + i] - m.mean[ch];
        m.var[ch] += d * d;
      }
    m.var[ch] /= static_cast<double>(m.count);
  }
  return m;
}

// y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.
std::vector<double> normalise(const float* x, int64_t rows, int64_t c, int64_t hw,
                              const std::vector<double>& mean, const std::vector<double>& var,
                              double eps, const float* gamma, const float* beta) {
  std::vector<double> y(rows * c * hw);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t e = (n * c + ch) * hw + i;
        y[e] = (x[e] - mean[ch]) / std::sqrt(var[ch] + eps) * gamma[ch] + beta[ch];
      }
  return y;
}

std::vector<float> host(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

Param& param(Layer& l, size_t i) { return *l.params().at(i); }
Param& buffer(Layer& l, size_t i) { return *l.buffers().at(i); }

void randomise_affine(Layer& l, uint64_t seed) {
  TestRng rng(seed);
  Param &w = param(l, 0), &b = param(l, 1);
  rng.fill(w.value.f32(), w.value.numel(), 0.5f, 1.5f);
  rng.fill(b.value.f32(), b.value.numel(), -1.f, 1.f);
}

// ---- params, buffers, forward ----------------------------------------------------------------

TEST(BatchNorm, ParamsAndBuffersHavePyTorchNamesShapesAndInitialValues) {
  LayerFixture f("{name: bn1, type: batchnorm}", Shape{4, 3, 3}, 2);
  ASSERT_EQ(f.layer->params().size(), 2u);
  EXPECT_EQ(param(*f.layer, 0).name, "bn1.weight");
  EXPECT_EQ(param(*f.layer, 1).name, "bn1.bias");
  ASSERT_EQ(f.layer->buffers().size(), 3u);
  const char* names[] = {"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"};
  const Shape shapes[] = {Shape{4}, Shape{4}, Shape{}};
  const float values[] = {0.f, 1.f, 0.f};
  for (size_t i = 0; i < 3; ++i) {
    Param& b = buffer(*f.layer, i);
    EXPECT_EQ(b.name, names[i]);
    EXPECT_EQ(b.full_shape, shapes[i]) << b.name;
    EXPECT_EQ(b.integer, i == 2) << b.name;
    EXPECT_FALSE(b.sharded());
    for (float v : host(b.value)) EXPECT_EQ(v, values[i]) << b.name;
  }
  for (size_t i = 0; i < 2; ++i)
    for (float v : host(param(*f.layer, i).value)) EXPECT_EQ(v, i == 0 ? 1.f : 0.f);
  // The store binds the buffers' values only.
  EXPECT_EQ(f.store->buffers().size(), 3u);
  EXPECT_FALSE(buffer(*f.layer, 0).grad.defined());
}

// Two training steps on different batches, then evaluation: y against the naive reference,
// running stats against PyTorch's update (momentum m, unbiased variance n / (n - 1)).
void check_two_steps_then_eval(const std::string& yaml, const Shape& in, int64_t rows,
                               double eps, double momentum) {
  LayerFixture f(yaml, in, rows);
  const int64_t c = in[0], hw = in.numel() / c;
  randomise_affine(*f.layer, 5);
  const float* gamma = param(*f.layer, 0).value.f32();
  const float* beta = param(*f.layer, 1).value.f32();
  std::vector<double> rm(c, 0.0), rv(c, 1.0);
  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE(cat("step ", step));
    TestRng(40 + step).fill(f.x.f32(), f.x.numel(), -1.f + step, 2.f + 3 * step);
    f.forward();
    const Moments m = moments(f.x.f32(), rows, c, hw);
    const std::vector<double> want = normalise(f.x.f32(), rows, c, hw, m.mean, m.var, eps, gamma, beta);
    for (int64_t e = 0; e < f.y.numel(); ++e) ASSERT_NEAR(f.y.f32()[e], want[e], 2e-5) << e;
    for (int64_t ch = 0; ch < c; ++ch) {
      rm[ch] = (1 - momentum) * rm[ch] + momentum * m.mean[ch];
      rv[ch] = (1 - momentum) * rv[ch] + momentum * m.var[ch] * m.count / (m.count - 1);
    }
  }
  const std::vector<float> got_rm = host(buffer(*f.layer, 0).value);
  const std::vector<float> got_rv = host(buffer(*f.layer, 1).value);
  for (int64_t ch = 0; ch < c; ++ch) {
    EXPECT_NEAR(got_rm[ch], rm[ch], 1e-6 * (1 + std::fabs(rm[ch]))) << "running_mean " << ch;
    EXPECT_NEAR(got_rv[ch], rv[ch], 1e-6 * (1 + std::fabs(rv[ch]))) << "running_var " << ch;
  }
  EXPECT_EQ(buffer(*f.layer, 2).value.f32()[0], 2.f) << "num_batches_tracked";

  // Evaluation normalises by the running statistics and changes no buffer.
  f.ctx.training = false;
  TestRng(50).fill(f.x.f32(), f.x.numel(), -3.f, 3.f);
  f.forward();
  const std::vector<double> want = normalise(f.x.f32(), rows, c, hw, rm, rv, eps, gamma, beta);
  for (int64_t e = 0; e < f.y.numel(); ++e) ASSERT_NEAR(f.y.f32()[e], want[e], 2e-5) << e;
  EXPECT_EQ(host(buffer(*f.layer, 0).value), got_rm);
  EXPECT_EQ(host(buffer(*f.layer, 1).value), got_rv);
  EXPECT_EQ(buffer(*f.layer, 2).value.f32()[0], 2.f);
}

TEST(BatchNorm, TwoDimensionalTrainingRunningStatsAndEvaluation) {
  check_two_steps_then_eval("{name: bn, type: batchnorm}", Shape{3, 4, 5}, 3, 1e-5, 0.1);
}

TEST(BatchNorm, OneDimensionalWithOwnEpsAndMomentum) {
  check_two_steps_then_eval("{name: bn, type: batchnorm, eps: 0.01, momentum: 0.3}", Shape{6}, 5,
                            0.01, 0.3);
}

// A channel whose values are all equal has variance 0 (never negative from rounding): y = beta.
TEST(BatchNorm, ConstantChannelGivesBeta) {
  LayerFixture f("{name: bn, type: batchnorm}", Shape{2, 2, 2}, 3);
  randomise_affine(*f.layer, 6);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 8; ++i) f.x.f32()[n * 8 + i] = i < 4 ? 0.1f : 1.f + 0.5f * i;
  f.forward();
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 4; ++i)
      EXPECT_NEAR(f.y.f32()[n * 8 + i], param(*f.layer, 1).value.f32()[0], 1e-6);
}

// ---- errors ---------------------------------------------------------------------------------

TEST(BatchNorm, BadFieldsNameFileLineAndField) {
  expect_error([] { layer_from_yaml("name: bn\ntype: batchnorm\nmomentum: 1.5\n"); },
               {"test.yaml:3", "field 'momentum'", "[0, 1]"});
  expect_error([] { layer_from_yaml("name: bn\ntype: batchnorm\neps: 0\n"); },
               {"test.yaml:3", "field 'eps'", "positive"});
  expect_error([] { layer_from_yaml("name: bn\ntype: batchnorm\nsync: maybe\n"); },
               {"test.yaml:3", "field 'sync'"});
}

TEST(BatchNorm, RejectsAFeatureShardAndOtherInputRanks) {
  LayerPlacement shard;
  shard.model_parallel = false;
  shard.input = Placement::shard(1, 0, 4, 8);
  expect_error([&] { layer_from_yaml("{name: bn, type: batchnorm}")->setup(Shape{4}, shard); },
               {"layer 'bn'", "batchnorm cannot take a feature shard"});
  expect_error(
      [] {
        layer_from_yaml("{name: bn, type: batchnorm}")
            ->setup(Shape{3, 4}, layer_placement(TestPlacement::Data));
      },
      {"layer 'bn'", "(C, H, W) or (F)", "(3, 4)"});
}

TEST(BatchNorm, TrainingOnOneValuePerChannelIsAnError) {
  LayerFixture f("{name: bn, type: batchnorm}", Shape{4}, 1);
  expect_error([&] { f.forward(); }, {"layer 'bn'", "more than one value per channel"});
  f.ctx.training = false;  // evaluation of one row is fine
  f.forward();
}

// ---- K workers on threads ------------------------------------------------------------------

constexpr int64_t kC = 3, kH = 2, kW = 3, kHW = kH * kW;

// One worker's results of a training forward and backward on its rows.
struct WorkerResult {
  std::vector<float> y, dx, dweight, dbias, running_mean, running_var;
  float batches = 0;
  std::vector<size_t> reduce_calls;
};

// Runs `yaml` on rank `rank` of `workers` (comm), on rows [row0, row0 + rows) of x and r
// (global tensors (B, C, H, W)), global batch B.
WorkerResult run_worker(const std::string& yaml, Communicator& comm, int64_t row0, int64_t rows,
                        int64_t global_rows, const std::vector<float>& x,
                        const std::vector<float>& r) {
  auto be = make_cpu_backend();
  auto layer = layer_from_yaml(yaml);
  LayerPlacement place;
  place.rank = comm.rank();
  place.workers = comm.size();
  layer->setup(Shape{kC, kH, kW}, place);
  ParamStore store(layer->params(), layer->buffers(), *be);
  for (Param* p : layer->params()) initialize_param(*p, 1, *be);
  for (Param* b : layer->buffers()) initialize_param(*b, 1, *be);
  randomise_affine(*layer, 9);
  RunContext ctx{*be, comm};
  ctx.global_rows = ctx.loss_rows = global_rows;
  const int64_t per_row = kC * kHW;
  const Shape shape{rows, kC, kH, kW};
  Tensor xt = be->empty(shape), rt = be->empty(shape), y = be->empty(shape), dx = be->empty(shape);
  std::copy_n(x.data() + row0 * per_row, rows * per_row, xt.f32());
  std::copy_n(r.data() + row0 * per_row, rows * per_row, rt.f32());
  layer->forward(ctx, xt, y);
  layer->backward(ctx, xt, y, rt, &dx);
  WorkerResult out{host(y), host(dx), host(param(*layer, 0).grad), host(param(*layer, 1).grad),
                   host(buffer(*layer, 0).value), host(buffer(*layer, 1).value),
                   buffer(*layer, 2).value.f32()[0], {}};
  if (auto* t = dynamic_cast<ThreadComm*>(&comm)) out.reduce_calls = t->reduce_calls;
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, size_t offset,
                  const char* what) {
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[offset + i], 1e-5 * (1 + std::fabs(want[offset + i])))
        << what << "[" << offset + i << "]";
}

// Each worker's rows in order; the results of K workers on threads.
std::vector<WorkerResult> run_workers(const std::string& yaml, const std::vector<int64_t>& split,
                                      const std::vector<float>& x, const std::vector<float>& r) {
  const int K = static_cast<int>(split.size());
  int64_t B = 0;
  for (int64_t n : split) B += n;
  ThreadGroup group(K);
  std::vector<WorkerResult> results(K);
  std::vector<std::thread> threads;
  int64_t row0 = 0;
  for (int k = 0; k < K; ++k) {
    threads.emplace_back([&, k, row0] {
      ThreadComm comm(group, k);
      results[k] = run_worker(yaml, comm, row0, split[k], B, x, r);
    });
    row0 += split[k];
  }
  for (auto& t : threads) t.join();
  return results;
}

TEST(BatchNorm, SynchronisedKWorkersEqualOneWorkerWithAllRows) {
  const int64_t B = 6;
  std::vector<float> x(B * kC * kHW), r(x.size());
  TestRng(80).fill(x.data(), static_cast<int64_t>(x.size()), -1.f, 3.f);
  TestRng(81).fill(r.data(), static_cast<int64_t>(r.size()));
  const std::string yaml = "{name: bn, type: batchnorm}";
  auto one = make_local_communicator();
  const WorkerResult all = run_worker(yaml, *one, 0, B, B, x, r);
  // Uneven, and a worker with no rows (it must still take part in both all-reduces).
  for (const std::vector<int64_t>& split : {std::vector<int64_t>{4, 2}, {2, 0, 4}, {2, 1, 2, 1}}) {
    SCOPED_TRACE(cat(split.size(), " workers"));
    const std::vector<WorkerResult> res = run_workers(yaml, split, x, r);
    std::vector<float> dweight(kC, 0.f), dbias(kC, 0.f);
    size_t offset = 0;
    for (size_t k = 0; k < res.size(); ++k) {
      SCOPED_TRACE(cat("rank ", k));
      expect_close(res[k].y, all.y, offset, "y");
      expect_close(res[k].dx, all.dx, offset, "dx");
      offset += res[k].y.size();
      // Replicated buffers stay identical on every worker.
      expect_close(res[k].running_mean, all.running_mean, 0, "running_mean");
      expect_close(res[k].running_var, all.running_var, 0, "running_var");
      EXPECT_EQ(res[k].batches, 1.f);
      // One all-reduce of (2C) forward, one backward.
      EXPECT_EQ(res[k].reduce_calls, (std::vector<size_t>{2 * kC, 2 * kC}));
      for (int64_t c = 0; c < kC; ++c) dweight[c] += res[k].dweight[c], dbias[c] += res[k].dbias[c];
    }
    // The param gradients are partial sums: their sum over workers is the whole batch's.
    expect_close(dweight, all.dweight, 0, "weight.grad summed");
    expect_close(dbias, all.dbias, 0, "bias.grad summed");
  }
}

TEST(BatchNorm, UnsynchronisedWorkersUseTheirOwnRowsOnly) {
  const int64_t B = 6;
  std::vector<float> x(B * kC * kHW), r(x.size());
  TestRng(82).fill(x.data(), static_cast<int64_t>(x.size()), -1.f, 3.f);
  TestRng(83).fill(r.data(), static_cast<int64_t>(r.size()));
  const std::string yaml = "{name: bn, type: batchnorm, sync: false}";
  const std::vector<WorkerResult> res = run_workers(yaml, {4, 2}, x, r);
  auto one = make_local_communicator();
  int64_t row0 = 0;
  for (int k = 0; k < 2; ++k) {
    SCOPED_TRACE(cat("rank ", k));
    const int64_t rows = k == 0 ? 4 : 2;
    // The worker's rows alone, as one worker's whole batch.
    std::vector<float> xk(x.begin() + row0 * kC * kHW, x.begin() + (row0 + rows) * kC * kHW);
    std::vector<float> rk(r.begin() + row0 * kC * kHW, r.begin() + (row0 + rows) * kC * kHW);
    const WorkerResult alone = run_worker(yaml, *one, 0, rows, rows, xk, rk);
    expect_close(res[k].y, alone.y, 0, "y");
    expect_close(res[k].dx, alone.dx, 0, "dx");
    expect_close(res[k].running_mean, alone.running_mean, 0, "running_mean");
    EXPECT_TRUE(res[k].reduce_calls.empty());
    row0 += rows;
  }
}

}  // namespace
}  // namespace owt::test
