// softmax_cross_entropy with label smoothing (PyTorch's CrossEntropyLoss(label_smoothing=eps)):
// loss and gradient against a naive double reference of PyTorch's definition and against
// numbers from PyTorch, central differences, evaluation passes reporting the plain loss, and a
// class-sharded loss over K = 2 and 3 workers (threads joined by an in-process communicator)
// that equals the unsharded one with a single all-reduce per pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gradient_check.h"
#include "thread_comm.h"

namespace owt::test {
namespace {

// ---- the reference ---------------------------------------------------------------------------

// PyTorch's definition, in double: loss_r = -sum_c q_c log p_c with q = (1 - eps) onehot + eps / C.
// Returns the loss summed over the rows; `grad` (rows, C) = (p - q) / loss_rows.
double naive_smoothed_loss(const float* z, const int32_t* labels, int rows, int classes,
                           double eps, double loss_rows, std::vector<double>* grad) {
  double sum = 0;
  grad->assign(static_cast<size_t>(rows) * classes, 0.0);
  for (int r = 0; r < rows; ++r) {
    const float* zr = z + static_cast<size_t>(r) * classes;
    const double m = *std::max_element(zr, zr + classes);
    double s = 0;
    for (int c = 0; c < classes; ++c) s += std::exp(zr[c] - m);
    for (int c = 0; c < classes; ++c) {
      const double log_p = zr[c] - m - std::log(s);
      const double q = (c == labels[r] ? 1 - eps : 0) + eps / classes;
      sum -= q * log_p;
      (*grad)[static_cast<size_t>(r) * classes + c] = (std::exp(log_p) - q) / loss_rows;
    }
  }
  return sum;
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: " << got[i] << ", want " << want[i];
}

// Random logits in [-3, 3] and labels, (rows, classes) and (rows).
void random_batch(uint64_t seed, int rows, int classes, std::vector<float>* z,
                  std::vector<int32_t>* labels) {
  TestRng rng(seed);
  z->resize(static_cast<size_t>(rows) * classes);
  rng.fill(z->data(), static_cast<int64_t>(z->size()), -3.f, 3.f);
  labels->resize(rows);
  for (int r = 0; r < rows; ++r) (*labels)[r] = static_cast<int32_t>(rng.index(classes));
}

// The loss layer's model-file mapping with label smoothing eps.
std::string loss_yaml(double eps) {
  return "{name: loss, type: softmax_cross_entropy, label_smoothing: " + std::to_string(eps) + "}";
}

// ---- one worker ----------------------------------------------------------------------------

struct Unsharded {
  LayerFixture f;
  LossLayer* loss;
  Tensor labels, dlogits;
  Unsharded(int rows, int classes, double eps)
      : f(loss_yaml(eps), Shape{classes}, rows) {
    loss = f.layer->as_loss();
    labels = f.backend->empty(Shape{rows}, DType::I32);
    dlogits = f.backend->empty(f.x.shape());
  }
  void set(const std::vector<float>& z, const std::vector<int32_t>& lab) {
    std::copy(z.begin(), z.end(), f.x.f32());
    std::copy(lab.begin(), lab.end(), labels.i32());
  }
  double forward() { return loss->forward_loss(f.ctx, f.x, labels); }
  std::vector<float> backward() {
    std::fill(dlogits.f32(), dlogits.f32() + dlogits.numel(), 777.f);
    loss->backward_loss(f.ctx, f.x, labels, dlogits);
    return std::vector<float>(dlogits.f32(), dlogits.f32() + dlogits.numel());
  }
};

TEST(LabelSmoothing, MatchesNaiveReferenceAndFiniteDifferences) {
  const int rows = 6, classes = 9, loss_rows = 16;
  for (double eps : {0.1, 0.3, 0.9}) {
    SCOPED_TRACE(eps);
    Unsharded u(rows, classes, eps);
    u.f.ctx.loss_rows = loss_rows;
    std::vector<float> z;
    std::vector<int32_t> labels;
    random_batch(5, rows, classes, &z, &labels);
    u.set(z, labels);
    std::vector<double> want_grad;
    const double want = naive_smoothed_loss(z.data(), labels.data(), rows, classes, eps, loss_rows,
                                            &want_grad);
    EXPECT_NEAR(u.forward(), want, 1e-5 * rows);
    const std::vector<float> grad = u.backward();
    expect_near_all(grad, want_grad, 1e-7, "dlogits");

    std::vector<GradVar> vars{GradVar{"logits", u.f.x.f32(), u.f.x.numel(), grad, true}};
    GradCheckOptions opt;
    opt.abs_tol = 1e-4;  // gradients are O(1 / loss_rows)
    const GradCheckStats st =
        check_gradients(vars, [&] { return u.forward() / loss_rows; }, opt);
    EXPECT_EQ(st.checked, rows * classes);
  }
}

// torch.nn.CrossEntropyLoss(label_smoothing=0.2, reduction='sum') in float64 on these logits.
TEST(LabelSmoothing, MatchesPyTorch) {
  Unsharded u(2, 4, 0.2);
  u.f.ctx.loss_rows = 1;
  u.set({1.f, -0.5f, 2.f, 0.25f, 0.f, 3.f, -1.f, 0.5f}, {2, 0});
  EXPECT_NEAR(u.forward(), 3.7621562863, 1e-5);
  expect_near_all(u.backward(),
                  {0.1765632475, 0.0005530937, -0.2341372414, 0.0570209002,   //
                   -0.8067139623, 0.8194233079, -0.0340759567, 0.0213666110},
                  1e-6, "dlogits");
}

// Smoothing regularises training; evaluation passes report the plain cross-entropy.
TEST(LabelSmoothing, EvaluationReportsThePlainLoss) {
  const int rows = 5, classes = 6;
  std::vector<float> z;
  std::vector<int32_t> labels;
  random_batch(8, rows, classes, &z, &labels);
  Unsharded smoothed(rows, classes, 0.25), plain(rows, classes, 0.0);
  smoothed.set(z, labels);
  plain.set(z, labels);
  smoothed.f.ctx.training = false;
  std::vector<double> unused;
  const double want_plain = naive_smoothed_loss(z.data(), labels.data(), rows, classes, 0, 1, &unused);
  EXPECT_NEAR(smoothed.forward(), want_plain, 1e-5 * rows);
  EXPECT_EQ(smoothed.forward(), plain.forward());
  smoothed.f.ctx.training = true;
  EXPECT_GT(std::fabs(smoothed.forward() - want_plain), 1e-2);
}

// ---- K workers, each a class shard -----------------------------------------------------------

// The loss over `bounds.size() - 1` class shards [bounds[k], bounds[k+1]) of `classes`.
class ShardedLoss {
 public:
  ShardedLoss(const std::vector<int>& bounds, int rows, double eps, int64_t loss_rows)
      : workers_(static_cast<int>(bounds.size()) - 1), rows_(rows), classes_(bounds.back()),
        bounds_(bounds), group_(workers_) {
    for (int k = 0; k < workers_; ++k) {
      auto w = std::make_unique<Worker>(group_, k);
      LayerPlacement place;
      place.rank = k;
      place.workers = workers_;
      place.model_parallel = true;
      place.input = Placement::shard(1, bounds[k], bounds[k + 1], classes_);
      w->layer = layer_from_yaml(loss_yaml(eps));
      w->layer->setup(Shape{cols(k)}, place);
      w->ctx.loss_rows = loss_rows;
      w->logits = w->backend->empty(Shape{rows, cols(k)});
      w->dlogits = w->backend->empty(Shape{rows, cols(k)});
      w->labels = w->backend->empty(Shape{rows}, DType::I32);
      workers.push_back(std::move(w));
    }
  }
  int cols(int k) const { return bounds_[k + 1] - bounds_[k]; }

  // Runs forward_loss (and with `dlogits`, backward_loss) on every shard at once; returns rank
  // 0's loss sum after checking every rank returned the same, and assembles dlogits
  // (rows, classes) from the shards.
  double run(const float* z, const std::vector<int32_t>& labels, std::vector<float>* dlogits) {
    std::vector<double> loss(workers_);
    std::vector<std::thread> threads;
    for (int k = 0; k < workers_; ++k)
      threads.emplace_back([&, k] {
        Worker& w = *workers[k];
        for (int r = 0; r < rows_; ++r)
          std::copy(z + r * classes_ + bounds_[k], z + r * classes_ + bounds_[k + 1],
                    w.logits.f32() + r * cols(k));
        std::copy(labels.begin(), labels.end(), w.labels.i32());
        loss[k] = w.layer->as_loss()->forward_loss(w.ctx, w.logits, w.labels);
        if (dlogits) w.layer->as_loss()->backward_loss(w.ctx, w.logits, w.labels, w.dlogits);
      });
    for (std::thread& t : threads) t.join();
    for (int k = 1; k < workers_; ++k) EXPECT_EQ(loss[k], loss[0]) << "rank " << k;
    if (dlogits) {
      dlogits->assign(static_cast<size_t>(rows_) * classes_, 0.f);
      for (int k = 0; k < workers_; ++k)
        for (int r = 0; r < rows_; ++r)
          std::copy(workers[k]->dlogits.f32() + r * cols(k),
                    workers[k]->dlogits.f32() + (r + 1) * cols(k),
                    dlogits->data() + r * classes_ + bounds_[k]);
    }
    return loss[0];
  }

  struct Worker {
    Worker(ThreadGroup& group, int rank) : comm(group, rank) {}
    std::unique_ptr<Backend> backend = make_cpu_backend();
    ThreadComm comm;
    RunContext ctx{*backend, comm};
    std::unique_ptr<Layer> layer;
    Tensor logits, dlogits, labels;  // (rows, cols), (rows, cols), (rows)
  };

 private:
  int workers_, rows_, classes_;
  std::vector<int> bounds_;
  ThreadGroup group_;

 public:
  std::vector<std::unique_ptr<Worker>> workers;  // after group_: their comms refer to it
};

TEST(LabelSmoothing, ClassShardedLossEqualsTheUnshardedOne) {
  const int rows = 5, classes = 7, loss_rows = 12;
  const double eps = 0.2;
  for (const std::vector<int>& bounds : {std::vector<int>{0, 4, 7}, std::vector<int>{0, 3, 5, 7}}) {
    SCOPED_TRACE(bounds.size() - 1);
    std::vector<float> z;
    std::vector<int32_t> labels;
    random_batch(11, rows, classes, &z, &labels);
    labels[0] = 0, labels[1] = classes - 1;  // a label in the first shard and one in the last
    std::vector<double> want_grad;
    const double want = naive_smoothed_loss(z.data(), labels.data(), rows, classes, eps,
                                            loss_rows, &want_grad);
    ShardedLoss sharded(bounds, rows, eps, loss_rows);
    std::vector<float> grad;
    EXPECT_NEAR(sharded.run(z.data(), labels, &grad), want, 1e-5 * rows);
    expect_near_all(grad, want_grad, 1e-7, "dlogits");
    // The logit sums travel with the target logits: one all-reduce of (rows, 2), and the one
    // all-gather of (max, sum-exp) pairs, per pass and rank.
    for (const auto& w : sharded.workers) {
      EXPECT_EQ(w->comm.reduce_calls, std::vector<size_t>{2 * rows});
      EXPECT_EQ(w->comm.gather_calls, 1);
    }

    std::vector<GradVar> vars{GradVar{"logits", z.data(), static_cast<int64_t>(z.size()),
                                      grad, true}};
    GradCheckOptions opt;
    opt.abs_tol = 1e-4;
    const GradCheckStats st = check_gradients(
        vars, [&] { return sharded.run(z.data(), labels, nullptr) / loss_rows; }, opt);
    EXPECT_EQ(st.checked, rows * classes);
  }
}

// Without smoothing (and in evaluation) the sharded loss communicates exactly as before: one
// all-reduce of the (rows) target logits.
TEST(LabelSmoothing, ShardedPlainLossSendsOnlyTheTargets) {
  const int rows = 4, classes = 6;
  std::vector<float> z;
  std::vector<int32_t> labels;
  random_batch(3, rows, classes, &z, &labels);
  std::vector<double> unused;
  const double want = naive_smoothed_loss(z.data(), labels.data(), rows, classes, 0, 1, &unused);
  ShardedLoss plain({0, 3, 6}, rows, 0.0, rows);
  EXPECT_NEAR(plain.run(z.data(), labels, nullptr), want, 1e-5 * rows);
  ShardedLoss eval({0, 3, 6}, rows, 0.3, rows);
  for (const auto& w : eval.workers) w->ctx.training = false;
  EXPECT_NEAR(eval.run(z.data(), labels, nullptr), want, 1e-5 * rows);
  for (const ShardedLoss* s : {&plain, &eval})
    for (const auto& w : s->workers) EXPECT_EQ(w->comm.reduce_calls, std::vector<size_t>{size_t(rows)});
}

}  // namespace
}  // namespace owt::test
