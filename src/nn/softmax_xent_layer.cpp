// softmax_cross_entropy: the loss, model-parallel over a class shard (docs/ARCHITECTURE.md). Each worker
// reduces its shard to (row max, row sum-exp, target logit); the shards combine without ever
// gathering the logits: one all-gather of (max, sum-exp) pairs and one all-reduce of targets
// (with label smoothing, of (target, logit sum) pairs: the smoothing needs sum_c logit_c).
#include <algorithm>
#include <cmath>
#include <vector>

#include "layer_factories.h"
#include "owt/nn/scratch.h"

namespace owt {

void LossLayer::forward(RunContext&, const Tensor&, Tensor&) {
  OWT_CHECK(false, "a loss layer runs through forward_loss");
}
void LossLayer::backward(RunContext&, const Tensor&, const Tensor&, const Tensor&, Tensor*) {
  OWT_CHECK(false, "a loss layer runs through backward_loss");
}

namespace {

class SoftmaxXentLayer : public LossLayer {
 public:
  // label_smoothing: PyTorch's CrossEntropyLoss(label_smoothing=eps) in training passes,
  //   loss = (1 - eps) (-log p_target) + eps mean_c (-log p_c) over all C classes;
  // evaluation passes (ctx.training false) report the plain cross-entropy.
  SoftmaxXentLayer(std::string name, double label_smoothing)
      : LossLayer(std::move(name)), smoothing_(label_smoothing) {}
  std::string type() const override { return "softmax_cross_entropy"; }

  Shape configure(const Shape& in) override {
    if (in.rank() != 1)
      throw Error(cat("layer '", name(), "': softmax_cross_entropy needs (classes) logits, got ",
                      in.str(), "; put a linear layer before it"));
    const Placement& logits = placement().input;  // a class shard, or every class
    cols_ = in[0];
    col0_ = logits.is_feature_shard() ? logits.begin : 0;
    classes_ = logits.is_feature_shard() ? logits.size : cols_;
    return in;
  }

  int64_t reduced_values_per_row() const override { return smoothing_ > 0 ? 2 : 1; }

  double forward_loss(RunContext& ctx, const Tensor& logits, const Tensor& labels) override {
    int rows = static_cast<int>(logits.size(0));
    const double eps = smoothing(ctx);
    reduce_rows(ctx, logits, labels, eps > 0);
    double sum = 0;
    if (eps == 0) {
      for (int r = 0; r < rows; ++r)
        sum += std::log(static_cast<double>(sumexp_host_[r])) + max_host_[r] - target_host_[r];
      return sum;
    }
    // -log p_c = lse - logit_c, so mean_c (-log p_c) = lse - (sum_c logit_c) / C.
    for (int r = 0; r < rows; ++r) {
      const double lse = std::log(static_cast<double>(sumexp_host_[r])) + max_host_[r];
      sum += (1 - eps) * (lse - target_host_[r]) +
             eps * (lse - static_cast<double>(logit_sum_host_[r]) / static_cast<double>(classes_));
    }
    return sum;
  }

  void backward_loss(RunContext& ctx, const Tensor& logits, const Tensor& labels,
                     Tensor& dlogits) override {
    int rows = static_cast<int>(logits.size(0));
    Tensor m = row_max_.get(ctx.backend, Shape{rows}), s = row_sumexp_.get(ctx.backend, Shape{rows});
    const XentGrad grad(1.f / static_cast<float>(ctx.loss_rows),
                        static_cast<float>(smoothing(ctx)), classes_);
    ctx.backend.xent_backward(logits.f32(), m.f32(), s.f32(), labels.i32(), rows,
                              static_cast<int>(cols_), static_cast<int>(col0_), grad,
                              dlogits.f32());
  }

  void count_correct(RunContext& ctx, const Tensor& logits, const int32_t* labels, int64_t* top1,
                     int64_t* top5) override {
    const int rows = static_cast<int>(logits.size(0)), k = static_cast<int>(std::min<int64_t>(5, classes_));
    const Candidates all = best_candidates(ctx, logits, k);
    for (int r = 0; r < rows; ++r) {
      // The label's rank among all candidates of the row: count strictly better candidates.
      float label_value = -INFINITY;
      bool found = false;
      std::vector<std::pair<float, float>> cand;
      for (int w = 0; w < all.workers; ++w)
        for (int j = 0; j < k; ++j) {
          const float* p = all.at(w, r, j);
          if (p[0] == -INFINITY) continue;
          cand.emplace_back(p[0], p[1]);
          if (static_cast<int32_t>(p[1]) == labels[r]) label_value = p[0], found = true;
        }
      if (!found) continue;
      int better = 0;
      for (const auto& c : cand)
        if (c.first > label_value || (c.first == label_value && c.second < labels[r])) ++better;
      if (better < 1) ++*top1;
      if (better < 5) ++*top5;
    }
  }

  void predict(RunContext& ctx, const Tensor& logits, int32_t* classes) override {
    const int rows = static_cast<int>(logits.size(0));
    const Candidates all = best_candidates(ctx, logits, 1);
    for (int r = 0; r < rows; ++r) {
      // Each worker's best; the best of those, ties to the lower class (as count_correct).
      float best = -INFINITY, best_class = 0;
      bool any = false;
      for (int w = 0; w < all.workers; ++w) {
        const float* p = all.at(w, r, 0);
        if (p[1] == -INFINITY) continue;  // a shard without classes
        if (!any || p[0] > best || (p[0] == best && p[1] < best_class)) best = p[0], best_class = p[1];
        any = true;
      }
      classes[r] = static_cast<int32_t>(best_class);
    }
  }

  // Kept: row max, sum-exp and target (and with label smoothing the logit sum) on the device
  // and on the host, (rows) each.
  int64_t scratch_bytes(int64_t rows) const override {
    return (smoothing_ > 0 ? 8 : 6) * rows * static_cast<int64_t>(sizeof(float));
  }
  // For a moment: best_candidates' host copy of the logits (rows, cols) with its index (cols),
  // its own and everyone's candidates (rows, 5, 2) x (1 + workers); the gathered pairs; with
  // label smoothing the (target, logit sum) pairs (rows, 2).
  int64_t host_scratch_bytes(int64_t rows) const override {
    const int64_t K = sharded() ? placement().workers : 1;
    const int64_t floats = rows * cols_ + cols_ + rows * 5 * 2 * (1 + K) +
                           (sharded() ? 2 * rows * (1 + K) : 0) +
                           (sharded() && smoothing_ > 0 ? 2 * rows : 0);
    return floats * static_cast<int64_t>(sizeof(float));
  }

 private:
  bool sharded() const { return placement().input.is_feature_shard() && placement().workers > 1; }
  double smoothing(const RunContext& ctx) const { return ctx.training ? smoothing_ : 0.0; }

  // Every worker's k best (value, class) per row, packed as floats (workers, rows, k, 2);
  // -inf pads a shard with fewer than k classes.
  struct Candidates {
    std::vector<float> packed;
    int workers = 1, rows = 0, k = 0;
    const float* at(int w, int r, int j) const {
      return packed.data() + ((static_cast<size_t>(w) * rows + r) * k + j) * 2;
    }
  };

  // This worker's k best per row, all-gathered over the class shards.
  Candidates best_candidates(RunContext& ctx, const Tensor& logits, int k) {
    const int rows = static_cast<int>(logits.size(0));
    std::vector<float> host(static_cast<size_t>(rows) * cols_);
    ctx.backend.to_host(logits.f32(), host.data(), host.size() * sizeof(float));
    const int kl = static_cast<int>(std::min<int64_t>(k, cols_));
    std::vector<float> mine(static_cast<size_t>(rows) * k * 2, -INFINITY);
    std::vector<int> idx(cols_);
    for (int r = 0; r < rows; ++r) {
      const float* row = host.data() + static_cast<size_t>(r) * cols_;
      for (int c = 0; c < cols_; ++c) idx[c] = c;
      std::partial_sort(idx.begin(), idx.begin() + kl, idx.end(),
                        [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      for (int j = 0; j < kl; ++j) {
        mine[(static_cast<size_t>(r) * k + j) * 2] = row[idx[j]];
        mine[(static_cast<size_t>(r) * k + j) * 2 + 1] = static_cast<float>(col0_ + idx[j]);
      }
    }
    Candidates out;
    out.rows = rows;
    out.k = k;
    out.workers = sharded() ? placement().workers : 1;
    if (out.workers == 1) {
      out.packed = std::move(mine);
      return out;
    }
    out.packed.resize(mine.size() * out.workers);
    ctx.comm.all_gather(mine.data(), out.packed.data(), std::vector<size_t>(out.workers, mine.size()));
    return out;
  }

  // Leaves the global row max, row sum-exp (device and host) and target logit (host); with
  // `logit_sums`, the sum of each row's logits over all classes (host) too.
  void reduce_rows(RunContext& ctx, const Tensor& logits, const Tensor& labels, bool logit_sums) {
    int rows = static_cast<int>(logits.size(0)), cols = static_cast<int>(cols_);
    Tensor m = row_max_.get(ctx.backend, Shape{rows}), s = row_sumexp_.get(ctx.backend, Shape{rows});
    Tensor t = target_.get(ctx.backend, Shape{rows});
    ctx.backend.row_max(logits.f32(), rows, cols, m.f32());
    ctx.backend.row_sumexp(logits.f32(), m.f32(), rows, cols, s.f32());
    ctx.backend.pick_target(logits.f32(), labels.i32(), rows, cols, static_cast<int>(col0_), t.f32());
    max_host_.resize(rows);
    sumexp_host_.resize(rows);
    target_host_.resize(rows);
    ctx.backend.to_host(m.f32(), max_host_.data(), rows * sizeof(float));
    ctx.backend.to_host(s.f32(), sumexp_host_.data(), rows * sizeof(float));
    ctx.backend.to_host(t.f32(), target_host_.data(), rows * sizeof(float));
    if (logit_sums) {
      Tensor z = logit_sum_.get(ctx.backend, Shape{rows});
      ctx.backend.row_sum(logits.f32(), rows, cols, z.f32());
      logit_sum_host_.resize(rows);
      ctx.backend.to_host(z.f32(), logit_sum_host_.data(), rows * sizeof(float));
    }
    if (!sharded()) return;
    int K = placement().workers;
    std::vector<float> pairs(2 * rows), all(2 * rows * K);
    for (int r = 0; r < rows; ++r) pairs[2 * r] = max_host_[r], pairs[2 * r + 1] = sumexp_host_[r];
    ctx.comm.all_gather(pairs.data(), all.data(), std::vector<size_t>(K, 2 * rows));
    for (int r = 0; r < rows; ++r) {
      float mx = -INFINITY;
      for (int w = 0; w < K; ++w) mx = std::max(mx, all[(w * rows + r) * 2]);
      double sum = 0;
      for (int w = 0; w < K; ++w)
        sum += all[(w * rows + r) * 2 + 1] * std::exp(static_cast<double>(all[(w * rows + r) * 2] - mx));
      max_host_[r] = mx;
      sumexp_host_[r] = static_cast<float>(sum);
    }
    reduce_targets(ctx, rows, logit_sums);
    ctx.backend.from_host(max_host_.data(), m.f32(), rows * sizeof(float));
    ctx.backend.from_host(sumexp_host_.data(), s.f32(), rows * sizeof(float));
  }

  // Sums each row's target logit (and logit sum) over the class shards: one all-reduce.
  void reduce_targets(RunContext& ctx, int rows, bool logit_sums) {
    if (!logit_sums) {
      ctx.comm.all_reduce(target_host_.data(), rows);
      return;
    }
    std::vector<float> pairs(2 * rows);  // (rows, 2): target, logit sum
    for (int r = 0; r < rows; ++r) pairs[2 * r] = target_host_[r], pairs[2 * r + 1] = logit_sum_host_[r];
    ctx.comm.all_reduce(pairs.data(), pairs.size());
    for (int r = 0; r < rows; ++r) target_host_[r] = pairs[2 * r], logit_sum_host_[r] = pairs[2 * r + 1];
  }

  int64_t cols_ = 0, col0_ = 0, classes_ = 0;
  double smoothing_ = 0;  // label smoothing eps of training passes
  Scratch row_max_, row_sumexp_, target_, logit_sum_;  // (rows) each
  std::vector<float> max_host_, sumexp_host_, target_host_, logit_sum_host_;
};

}  // namespace

std::unique_ptr<Layer> make_softmax_xent_layer(ConfigMap& cfg) {
  std::string name = cfg.get_string("name");
  const double smoothing = cfg.get_float("label_smoothing", 0.0);
  if (smoothing < 0 || smoothing >= 1) cfg.fail("label_smoothing", "must be in [0, 1)");
  return std::make_unique<SoftmaxXentLayer>(std::move(name), smoothing);
}

}  // namespace owt
