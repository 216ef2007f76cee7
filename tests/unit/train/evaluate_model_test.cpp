// evaluate_model's confusion matrix and logits, checked against one-row forward passes: every
// example's logits in data set order, its arg-max (ties to the lower class) counted in the
// row of its label; counts sum to the set size, row sums to each class's examples.
#include <gtest/gtest.h>

#include <algorithm>

#include "owt/data/loader.h"
#include "owt/train/evaluate.h"
#include "owt/train/model.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

TEST(EvaluateModel, ConfusionMatrixAndLogitsMatchOneRowPasses) {
  TempDir dir;
  const int n = 29, classes = 4;  // 29 = 3 batches of 8 and a partial one
  write_idx_dataset(dir.path(), "t10k", n, 12, 12, classes, 5, false);
  ModelConfig cfg = parse_model_config(tiny_model_yaml(dir.path(), 1, 8), "tiny.yaml");
  auto data = open_idx_dataset(dir.path(), "test");
  Transform tf(cfg.data.eval, data->example_shape(), 1);
  BatchLoader loader(*data, tf, LoaderSpec{8, 0, 1, false, false, false, 1, 1});
  auto backend = make_cpu_backend();
  auto comm = make_local_communicator();
  Model model(cfg, *backend, *comm);
  EvalOptions opt;
  opt.confusion = opt.logits = true;
  EvalResult got = evaluate_model(model, cfg, *data, {&loader}, *backend, *comm, opt);

  ASSERT_EQ(got.classes, classes);
  ASSERT_EQ(got.confusion.size(), size_t{classes * classes});
  ASSERT_EQ(got.logits.size(), size_t{n * classes});
  std::vector<int64_t> want(classes * classes, 0), per_class(classes, 0);
  int64_t diagonal = 0;
  std::vector<float> x(144), scratch;
  for (int64_t i = 0; i < n; ++i) {
    Image img;
    data->read_image(i, img);
    tf.apply(img, x.data(), 0, i, false, scratch);
    Tensor xt = backend->empty(Shape{1, 1, 12, 12});
    backend->from_host(x.data(), xt.f32(), x.size() * sizeof(float));
    std::vector<float> l(classes);
    backend->to_host(model.stepper().logits(xt).f32(), l.data(), classes * sizeof(float));
    for (int c = 0; c < classes; ++c) EXPECT_NEAR(got.logits[i * classes + c], l[c], 1e-5) << i;
    const int64_t predicted = std::max_element(l.begin(), l.end()) - l.begin();  // first of ties
    ++want[data->label(i) * classes + predicted];
    ++per_class[data->label(i)];
    diagonal += predicted == data->label(i);
  }
  EXPECT_EQ(got.confusion, want);
  int64_t total = 0;
  for (int64_t c = 0; c < classes; ++c) {
    int64_t row = 0;
    for (int64_t p = 0; p < classes; ++p) row += got.confusion[c * classes + p];
    EXPECT_EQ(row, per_class[c]) << "class " << c;
    total += row;
  }
  EXPECT_EQ(total, n);
  EXPECT_EQ(got.counts.top1, diagonal);
}

}  // namespace
}  // namespace owt::test
