// AlexNet-OWT (models/alexnet_owt.yaml) at 224x224 trained for a few steps on one fixed random
// batch, as `owt bench` times it, in tf32 and bf16: every loss must be finite and the loss
// must fall (the bench runs of tools/gpu_check.sh report speed only; this is what says the
// speed is of a network that learns). Skipped without a CUDA device (failed under
// OWT_REQUIRE_GPU=1). The model file is read from $OWT_SOURCE_DIR when set (the GPU bundle
// runs away from the build tree), else from the source tree this was built from.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "gpu_test_util.h"
#include "owt/core/philox.h"
#include "owt/train/evaluate.h"
#include "owt/train/model.h"
#include "owt/train/model_config.h"

namespace owt::test {
namespace {

std::string alexnet_file() {
  const char* env = std::getenv("OWT_SOURCE_DIR");
  return std::string(env && *env ? env : OWT_SOURCE_DIR) + "/models/alexnet_owt.yaml";
}

// Losses of `steps` SGD steps on one batch of `batch` uniform(-1, 1) images, labels uniform.
std::vector<double> fixed_batch_losses(Backend& backend, int steps, int64_t batch) {
  ModelConfig cfg = load_model_config(alexnet_file());
  auto comm = make_local_communicator();
  Model model(cfg, backend, *comm);
  RngKey key = rng_key(cfg.seed, Purpose::Test);
  std::vector<float> xs(batch * cfg.net.input.numel());
  for (size_t i = 0; i < xs.size(); ++i)
    xs[i] = 2.f * philox_uniform(key, 0, static_cast<uint32_t>(i), 0, 0) - 1.f;
  std::vector<int32_t> labels(batch);
  for (int64_t i = 0; i < batch; ++i)
    labels[i] = static_cast<int32_t>(philox_uniform(key, 1, static_cast<uint32_t>(i), 0, 0) *
                                     cfg.net.classes);
  Tensor x = backend.empty(cfg.net.input.with_batch(batch));
  Tensor y = backend.empty(Shape{batch}, DType::I32);
  backend.from_host(xs.data(), x.f32(), xs.size() * sizeof(float));
  backend.from_host(labels.data(), y.i32(), batch * sizeof(int32_t));
  const BatchRows rows = split_rows(batch, 0, 1);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s)
    losses.push_back(model.train_step(x, y, labels.data(), rows, s, cfg.solver.lr).loss_sum / batch);
  return losses;
}

class GpuAlexNet : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuAlexNet, LossIsFiniteAndFallsOnAFixedBatch) {
  OWT_SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(0, GetParam());
  const std::vector<double> losses = fixed_batch_losses(*gpu, 12, 32);
  std::string all;
  for (double l : losses) all += " " + std::to_string(l);
  for (double l : losses) ASSERT_TRUE(std::isfinite(l)) << "losses:" << all;
  EXPECT_LT(losses.back(), losses.front()) << "losses:" << all;
}

INSTANTIATE_TEST_SUITE_P(Precisions, GpuAlexNet, ::testing::Values("tf32", "bf16"));

}  // namespace
}  // namespace owt::test
