// One training step on the CUDA backend against the CPU backend: a small AlexNet-shaped model
// (conv, relu, LRN, max/avg pooling, dropout, model-parallel linears, sharded loss) built from
// YAML, identical Philox init on both, the same batch; the loss and every parameter's update
// must agree. fp32-strict at 1e-5 (the CPU's float32 invariant tolerance); tf32 and bf16 at
// 1e-2 and 5e-2, since a whole step compounds the per-op rounding of reduced-precision maths.
// Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>

#include "gpu_test_util.h"
#include "owt/core/philox.h"
#include "owt/train/evaluate.h"
#include "owt/train/model.h"

namespace owt::test {
namespace {

const char* const kModel =
    "name: gpu_step\n"
    "input: [3, 19, 19]\n"
    "classes: 10\n"
    "data: {format: idx, path: none}\n"
    "layers:\n"
    "  - {name: conv1, type: conv, filters: 8, size: 5, stride: 2, pad: 2}\n"
    "  - {name: relu1, type: relu}\n"
    "  - {name: lrn1, type: lrn, size: 5, alpha: 0.001}\n"
    "  - {name: pool1, type: maxpool, size: 3, stride: 2}\n"
    "  - {name: conv2, type: conv, filters: 12, size: 3, pad: 1}\n"
    "  - {name: relu2, type: relu}\n"
    "  - {name: pool2, type: avgpool, size: 2, stride: 2}\n"
    "  - {name: fc1, type: linear, outputs: 32, parallel: model}\n"
    "  - {name: relu3, type: relu}\n"
    "  - {name: drop1, type: dropout, rate: 0.25}\n"
    "  - {name: fc2, type: linear, outputs: 10, parallel: model}\n"
    "  - {name: loss, type: softmax_cross_entropy}\n"
    "parallel: {transition: allgather, fc_update: step}\n"
    "solver: {type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0005, batch: 16, epochs: 1}\n";

struct StepResult {
  double loss = 0;
  std::vector<std::vector<float>> before, after;  // every param, host
};

StepResult one_step(Backend& backend, const ModelConfig& cfg, int64_t B) {
  auto comm = make_local_communicator();
  Model model(cfg, backend, *comm);
  BatchRows rows = split_rows(B, 0, 1);
  const int64_t per = cfg.net.input.numel();
  std::vector<float> xs(B * per);
  for (int64_t i = 0; i < B * per; ++i)
    xs[i] = 2.f * philox_uniform(rng_key(3, Purpose::Test), static_cast<uint32_t>(i), 0, 0, 0) - 1.f;
  std::vector<int32_t> labels(B);
  for (int64_t r = 0; r < B; ++r) labels[r] = static_cast<int32_t>((r * 7) % cfg.net.classes);
  Tensor x = backend.empty(cfg.net.input.with_batch(B));
  Tensor y = backend.empty(Shape{B}, DType::I32);
  backend.from_host(xs.data(), x.f32(), xs.size() * sizeof(float));
  backend.from_host(labels.data(), y.i32(), B * sizeof(int32_t));

  StepResult out;
  auto snapshot = [&](std::vector<std::vector<float>>* dst) {
    for (Param* p : model.store().params()) {
      std::vector<float> v(p->value.numel());
      backend.to_host(p->value.f32(), v.data(), v.size() * sizeof(float));
      dst->push_back(std::move(v));
    }
  };
  snapshot(&out.before);
  EvalCounts c = model.train_step(x, y, labels.data(), rows, 0, cfg.solver.lr);
  out.loss = c.loss_sum / B;
  snapshot(&out.after);
  return out;
}

class GpuTrainStep : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuTrainStep, MatchesTheCpuBackend) {
  OWT_SKIP_WITHOUT_GPU();
  const std::string precision = GetParam();
  const double tol = precision == "fp32-strict" ? 1e-5 : precision == "tf32" ? 1e-2 : 5e-2;
  ModelConfig cfg = parse_model_config(kModel, "gpu_step.yaml");
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0, precision);
  StepResult want = one_step(*cpu, cfg, 16), got = one_step(*gpu, cfg, 16);
  EXPECT_NEAR(got.loss, want.loss, tol * std::abs(want.loss));
  ASSERT_EQ(got.after.size(), want.after.size());
  for (size_t p = 0; p < want.after.size(); ++p) {
    EXPECT_EQ(got.before[p], want.before[p]) << "param " << p << ": the same init on both";
    // Compare the updates, normwise: the step itself, not the (identical) starting point.
    double num = 0, den = 0;
    for (size_t i = 0; i < want.after[p].size(); ++i) {
      double dw = double(want.after[p][i]) - want.before[p][i];
      double dg = double(got.after[p][i]) - got.before[p][i];
      num += (dg - dw) * (dg - dw);
      den += dw * dw;
    }
    double rel = std::sqrt(num / std::max(den, 1e-30));
    EXPECT_LE(rel, tol) << "param " << p << " update differs (" << precision << ")";
    EXPECT_GT(den, 0) << "param " << p << " did not move";
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, GpuTrainStep,
                         ::testing::Values("fp32-strict", "tf32", "bf16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace owt::test
