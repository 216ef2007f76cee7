// evaluate_views scores each example by its logits averaged over the views: checked against
// the same average computed by hand from one-view forward passes.
#include <gtest/gtest.h>

#include <cmath>

#include "owt/data/loader.h"
#include "owt/train/evaluate.h"
#include "owt/train/model.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

TEST(EvaluateViews, ScoresTheMeanLogitsOfTheViews) {
  TempDir dir;
  write_idx_dataset(dir.path(), "t10k", 20, 12, 12, 4, 3, false);
  std::string text = tiny_model_yaml(dir.path(), 1, 8);
  text.replace(text.find("input: [1, 12, 12]"), 18, "input: [1, 10, 10]");
  ModelConfig cfg = parse_model_config(text, "views.yaml");
  auto data = open_idx_dataset(dir.path(), "test");
  TransformSpec spec;
  spec.crop = 10;
  spec.test_views = 10;
  Transform tf(spec, data->example_shape(), 1);
  std::vector<std::unique_ptr<BatchLoader>> loaders;
  std::vector<BatchLoader*> views;
  for (int v = 0; v < 10; ++v) {
    LoaderSpec ls{8, 0, 1, false, false, false, 1, 1};
    ls.view = v;
    loaders.push_back(std::make_unique<BatchLoader>(*data, tf, ls));
    views.push_back(loaders.back().get());
  }
  auto backend = make_cpu_backend();
  auto comm = make_local_communicator();
  Model model(cfg, *backend, *comm);
  HybridStep& stepper = model.stepper();
  EvalCounts got = evaluate_views(stepper, *data, views, cfg.net.input, 8, *backend, *comm);

  // By hand: every example's 10 views, logits averaged, softmax cross-entropy in double.
  double loss = 0;
  int64_t top1 = 0;
  std::vector<float> x(100);
  for (int64_t i = 0; i < 20; ++i) {
    std::vector<double> mean(4, 0.0);
    for (int v = 0; v < 10; ++v) {
      Image img;
      data->read_image(i, img);
      std::vector<float> scratch;
      tf.apply_view(img, x.data(), v, scratch);
      Tensor xt = backend->empty(Shape{1, 1, 10, 10});
      backend->from_host(x.data(), xt.f32(), x.size() * sizeof(float));
      Tensor logits = stepper.logits(xt);
      std::vector<float> l(4);
      backend->to_host(logits.f32(), l.data(), 4 * sizeof(float));
      for (int c = 0; c < 4; ++c) mean[c] += l[c] / 10.0;
    }
    double mx = *std::max_element(mean.begin(), mean.end()), sum = 0;
    for (double m : mean) sum += std::exp(m - mx);
    loss += std::log(sum) + mx - mean[data->label(i)];
    top1 += std::max_element(mean.begin(), mean.end()) - mean.begin() == data->label(i);
  }
  EXPECT_EQ(got.rows, 20);
  EXPECT_NEAR(got.loss_sum, loss, 1e-4 * std::abs(loss));
  EXPECT_EQ(got.top1, top1);
}

}  // namespace
}  // namespace owt::test
