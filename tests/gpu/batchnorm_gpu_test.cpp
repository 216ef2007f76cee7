// The CUDA backend's batch normalisation ops against the CPU backend (the specification) on
// random inputs, 1e-5 relative (plain fp32 maths, sums in double on both): 2-D and 1-D (HW = 1)
// shapes, shapes whose N*HW spans many and the most (256) partial sums, a worker with no rows;
// the sums and running statistics also against a naive double reference, and the sums
// bit-identical run to run. Skipped without a CUDA device (failed under OWT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cstring>

#include "gpu_test_util.h"

namespace owt::test {
namespace {

// One CUDA backend for the suite (SharedCudaBackendTest).
class GpuBatchNorm : public SharedCudaBackendTest<GpuBatchNorm> {};

size_t elements(const BatchNormGeom& g) { return size_t(g.n) * g.c * g.hw; }

struct BnInputs {
  std::vector<float> x, dy;                    // (N, C, HW)
  std::vector<float> gamma, beta;              // (C)
  std::vector<float> running_mean, running_var;  // (C), before the step
  float momentum = 0.1f;
};

BnInputs random_inputs(const BatchNormGeom& g, uint32_t seed) {
  BnInputs in;
  in.x = random_floats(elements(g), seed, -1.f, 3.f);  // mean 1: the variance is not E[x^2]
  in.dy = random_floats(elements(g), seed + 1);
  in.gamma = random_floats(g.c, seed + 2, 0.5f, 1.5f);
  in.beta = random_floats(g.c, seed + 3);
  in.running_mean = random_floats(g.c, seed + 4);
  in.running_var = random_floats(g.c, seed + 5, 0.5f, 2.f);
  return in;
}

// The halves of a (2C) vector: [0, C) and [C, 2C).
std::vector<float> half(const std::vector<float>& v, int which) {
  const size_t c = v.size() / 2;
  return std::vector<float>(v.begin() + which * c, v.begin() + (which + 1) * c);
}

struct BnOutputs {
  std::vector<float> sums, y, running_mean, running_var, save_mean, save_invstd;
  std::vector<float> dsums, dx, y_eval;
};

// One training step as the layer runs it on one worker (count = N*HW), then evaluation with
// the updated running statistics.
BnOutputs run_batchnorm(Backend& b, const BatchNormGeom& g, const BnInputs& in) {
  const size_t n = elements(g), c = g.c;
  const int64_t count = int64_t(g.n) * g.hw;
  Tensor x = upload(b, in.x), dy = upload(b, in.dy), gamma = upload(b, in.gamma),
         beta = upload(b, in.beta), rm = upload(b, in.running_mean),
         rv = upload(b, in.running_var);
  Tensor sums = b.empty(Shape{int64_t(2 * c)}), dsums = b.empty(Shape{int64_t(2 * c)});
  Tensor mean = b.empty(Shape{int64_t(c)}), invstd = b.empty(Shape{int64_t(c)});
  Tensor y = b.empty(Shape{int64_t(n)}), dx = b.empty(Shape{int64_t(n)}),
         y_eval = b.empty(Shape{int64_t(n)});
  b.batchnorm_sums(g, x.f32(), sums.f32());
  b.batchnorm_forward_train(g, x.f32(), sums.f32(), count, gamma.f32(), beta.f32(), in.momentum,
                            rm.f32(), rv.f32(), mean.f32(), invstd.f32(), y.f32());
  b.batchnorm_backward_sums(g, x.f32(), dy.f32(), mean.f32(), invstd.f32(), dsums.f32());
  b.batchnorm_backward_data(g, x.f32(), dy.f32(), dsums.f32(), count, gamma.f32(), mean.f32(),
                            invstd.f32(), dx.f32());
  b.batchnorm_forward_eval(g, x.f32(), gamma.f32(), beta.f32(), rm.f32(), rv.f32(),
                           y_eval.f32());
  BnOutputs o;
  o.sums = download(b, sums, 2 * c), o.dsums = download(b, dsums, 2 * c);
  o.running_mean = download(b, rm, c), o.running_var = download(b, rv, c);
  o.save_mean = download(b, mean, c), o.save_invstd = download(b, invstd, c);
  o.y = download(b, y, n), o.dx = download(b, dx, n), o.y_eval = download(b, y_eval, n);
  return o;
}

// Naive double reference: per channel sum x, sum x^2, and the running statistics after one
// step (PyTorch: biased variance normalises, the unbiased one moves the running variance).
struct NaiveStats {
  std::vector<float> sum_x, sum_x2, running_mean, running_var;
};
NaiveStats naive_stats(const BatchNormGeom& g, const BnInputs& in) {
  NaiveStats s;
  const double count = double(g.n) * g.hw;
  for (int c = 0; c < g.c; ++c) {
    double a = 0, b = 0;
    for (int i = 0; i < g.n; ++i)
      for (int p = 0; p < g.hw; ++p) {
        double v = in.x[(size_t(i) * g.c + c) * g.hw + p];
        a += v, b += v * v;
      }
    const double mean = a / count, var = b / count - mean * mean;
    const double m = in.momentum;
    s.sum_x.push_back(float(a));
    s.sum_x2.push_back(float(b));
    s.running_mean.push_back(float((1 - m) * in.running_mean[c] + m * mean));
    s.running_var.push_back(float((1 - m) * in.running_var[c] + m * var * count / (count - 1)));
  }
  return s;
}

std::string describe(const BatchNormGeom& g) {
  return "n=" + std::to_string(g.n) + " c=" + std::to_string(g.c) +
         " hw=" + std::to_string(g.hw) + " eps=" + std::to_string(g.eps);
}

TEST_F(GpuBatchNorm, EveryOpMatchesTheCpuBackend) {
  const BatchNormGeom cases[] = {
      {4, 3, 5 * 7, 1e-5f},      // BatchNorm2d, one part per channel
      {32, 16, 1, 1e-5f},        // BatchNorm1d
      {9000, 6, 1, 1e-5f},       // BatchNorm1d, rows over several parts
      {2, 5, 9, 1e-3f},          // another eps
      {16, 4, 112 * 112, 1e-5f},  // ~49 parts per channel
      {4, 2, 1 << 20, 1e-5f},    // 4M values per channel: the most parts (256)
  };
  uint32_t seed = 100;
  for (const BatchNormGeom& g : cases) {
    const BnInputs in = random_inputs(g, seed += 10);
    const BnOutputs got = run_batchnorm(*gpu_, g, in), want = run_batchnorm(*cpu_, g, in);
    const std::string what = describe(g);
    for (int h = 0; h < 2; ++h) {
      EXPECT_TRUE(near_rel(half(got.sums, h), half(want.sums, h), 1e-5)) << what << " sums " << h;
      EXPECT_TRUE(near_rel(half(got.dsums, h), half(want.dsums, h), 1e-5))
          << what << " dsums " << h;
    }
    EXPECT_TRUE(near_rel(got.save_mean, want.save_mean, 1e-5)) << what << " save_mean";
    EXPECT_TRUE(near_rel(got.save_invstd, want.save_invstd, 1e-5)) << what << " save_invstd";
    EXPECT_TRUE(near_rel(got.running_mean, want.running_mean, 1e-5)) << what << " running_mean";
    EXPECT_TRUE(near_rel(got.running_var, want.running_var, 1e-5)) << what << " running_var";
    EXPECT_TRUE(near_rel(got.y, want.y, 1e-5)) << what << " forward (train)";
    EXPECT_TRUE(near_rel(got.dx, want.dx, 1e-5)) << what << " backward data";
    EXPECT_TRUE(near_rel(got.y_eval, want.y_eval, 1e-5)) << what << " forward (eval)";

    // Independently of the CPU (naive double reference): the sums and the running statistics.
    const NaiveStats ref = naive_stats(g, in);
    EXPECT_TRUE(near_rel(half(got.sums, 0), ref.sum_x, 1e-5)) << what << " sum x (naive)";
    EXPECT_TRUE(near_rel(half(got.sums, 1), ref.sum_x2, 1e-6)) << what << " sum x^2 (naive)";
    EXPECT_TRUE(near_rel(got.running_mean, ref.running_mean, 1e-5)) << what << " running_mean";
    EXPECT_TRUE(near_rel(got.running_var, ref.running_var, 1e-5)) << what << " running_var";
  }
}

// A worker with no rows of its own still takes part: its sums are zeros, and the forward with
// the (all-reduced) sums of the others moves its running statistics like theirs.
TEST_F(GpuBatchNorm, WorkerWithNoRowsWritesZeroSumsAndUpdatesRunningStats) {
  const BatchNormGeom g{0, 5, 4, 1e-5f};
  const int64_t count = 40;  // the other workers' rows * HW
  const std::vector<float> global_sums = {3.f, -1.f, 0.5f, 8.f, -2.f,      // sum x
                                          41.f, 12.f, 33.f, 60.f, 25.f};  // sum x^2
  BnInputs in = random_inputs(BatchNormGeom{1, g.c, g.hw, g.eps}, 7);
  std::vector<float> sums[2], dsums[2], rm[2], rv[2], mean[2], invstd[2];
  for (int i = 0; i < 2; ++i) {
    Backend& b = *both(i);
    Tensor x = upload(b, {}), dy = upload(b, {}), gamma = upload(b, in.gamma),
           beta = upload(b, in.beta), trm = upload(b, in.running_mean),
           trv = upload(b, in.running_var), tglobal = upload(b, global_sums);
    Tensor ts = upload(b, std::vector<float>(2 * g.c, 7.f)),
           tds = upload(b, std::vector<float>(2 * g.c, 7.f));
    Tensor tm = b.empty(Shape{g.c}), tis = b.empty(Shape{g.c}), y = b.empty(Shape{1});
    b.batchnorm_sums(g, x.f32(), ts.f32());
    b.batchnorm_forward_train(g, x.f32(), tglobal.f32(), count, gamma.f32(), beta.f32(),
                              in.momentum, trm.f32(), trv.f32(), tm.f32(), tis.f32(), y.f32());
    b.batchnorm_backward_sums(g, x.f32(), dy.f32(), tm.f32(), tis.f32(), tds.f32());
    b.batchnorm_backward_data(g, x.f32(), dy.f32(), tglobal.f32(), count, gamma.f32(), tm.f32(),
                              tis.f32(), y.f32());  // no rows: writes nothing
    sums[i] = download(b, ts, 2 * g.c), dsums[i] = download(b, tds, 2 * g.c);
    rm[i] = download(b, trm, g.c), rv[i] = download(b, trv, g.c);
    mean[i] = download(b, tm, g.c), invstd[i] = download(b, tis, g.c);
  }
  const std::vector<float> zeros(2 * g.c, 0.f);
  EXPECT_EQ(sums[0], zeros);
  EXPECT_EQ(dsums[0], zeros);
  EXPECT_EQ(sums[1], zeros) << "cpu";
  EXPECT_EQ(dsums[1], zeros) << "cpu";
  EXPECT_TRUE(near_rel(rm[0], rm[1], 1e-5)) << "running_mean";
  EXPECT_TRUE(near_rel(rv[0], rv[1], 1e-5)) << "running_var";
  EXPECT_TRUE(near_rel(mean[0], mean[1], 1e-5)) << "save_mean";
  EXPECT_TRUE(near_rel(invstd[0], invstd[1], 1e-5)) << "save_invstd";
  for (int c = 0; c < g.c; ++c) {  // and against the formula
    const double mu = global_sums[c] / double(count);
    const double var = global_sums[g.c + c] / double(count) - mu * mu;
    EXPECT_NEAR(rm[0][c], 0.9 * in.running_mean[c] + 0.1 * mu, 1e-6) << "channel " << c;
    EXPECT_NEAR(rv[0][c], 0.9 * in.running_var[c] + 0.1 * var * count / (count - 1), 1e-5)
        << "channel " << c;
  }
}

// The per-channel reductions give the same bits every run (no atomics), on a shape whose
// 256 parts per channel an atomic reduction would add in a different order each time.
TEST_F(GpuBatchNorm, SumsAreBitIdenticalRunToRun) {
  const BatchNormGeom g{4, 3, 1 << 19, 1e-5f};
  const BnInputs in = random_inputs(g, 55);
  Tensor x = upload(*gpu_, in.x), dy = upload(*gpu_, in.dy);
  Tensor mean = upload(*gpu_, std::vector<float>{0.9f, 1.1f, 1.f}),
         invstd = upload(*gpu_, std::vector<float>{0.8f, 0.9f, 0.85f});
  Tensor sums = gpu_->empty(Shape{2 * g.c}), dsums = gpu_->empty(Shape{2 * g.c});
  std::vector<float> first_sums, first_dsums;
  for (int run = 0; run < 4; ++run) {
    gpu_->batchnorm_sums(g, x.f32(), sums.f32());
    gpu_->batchnorm_backward_sums(g, x.f32(), dy.f32(), mean.f32(), invstd.f32(), dsums.f32());
    std::vector<float> s = download(*gpu_, sums, 2 * g.c), d = download(*gpu_, dsums, 2 * g.c);
    if (run == 0) {
      first_sums = s, first_dsums = d;
      continue;
    }
    EXPECT_EQ(0, std::memcmp(s.data(), first_sums.data(), s.size() * sizeof(float)))
        << "sums differ in run " << run;
    EXPECT_EQ(0, std::memcmp(d.data(), first_dsums.data(), d.size() * sizeof(float)))
        << "backward sums differ in run " << run;
  }
}

}  // namespace
}  // namespace owt::test
