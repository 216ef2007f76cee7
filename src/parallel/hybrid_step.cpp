// HybridStep: forward, transition, model-parallel stage, loss, backward and gradient sync
// for one global batch. Layers are driven generically; only the plan's stage split matters.
#include "owt/parallel/hybrid_step.h"

#include <chrono>
#include <numeric>

namespace owt {

int64_t BatchRows::total() const { return std::accumulate(counts.begin(), counts.end(), int64_t{0}); }

int64_t BatchRows::row0_of(int r) const {
  return std::accumulate(counts.begin(), counts.begin() + r, int64_t{0});
}

namespace {
std::vector<size_t> scaled(const std::vector<int64_t>& counts, int64_t unit) {
  std::vector<size_t> out;
  for (int64_t c : counts) out.push_back(static_cast<size_t>(c * unit));
  return out;
}
}  // namespace

HybridStep::HybridStep(Network& net, ParamStore& store, Backend& backend, Communicator& comm,
                       ParallelConfig config, size_t bucket_bytes)
    : net_(net), store_(store), backend_(backend), comm_(comm), config_(std::move(config)),
      buckets_(store, comm, bucket_bytes), in_place_(net.size(), false), outputs_(net.size()) {
  for (size_t i = 1; i + 1 < net.size(); ++i)
    in_place_[i] = net.layer(i).can_run_in_place() && !net.layer(i - 1).backward_needs_output();
}

void HybridStep::enable_profiling(bool on) {
  profiling_ = on;
  times_.forward.assign(net_.size(), 0.0);
  times_.backward.assign(net_.size(), 0.0);
}

namespace {
// Runs `body`, adding its wall time (after a device synchronise) to `*total` when profiling.
template <typename F>
void timed(bool profiling, Backend& backend, double* total, F&& body) {
  if (!profiling) return body();
  auto t0 = std::chrono::steady_clock::now();
  body();
  backend.synchronize();
  *total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Tensor HybridStep::input_of(size_t i, int64_t rows) {
  if (i == 0) return dp_input_;
  if (net_.has_model_parallel_stage() && i == net_.transition()) return mp_input_;
  return output_of(i - 1, rows);
}

Tensor HybridStep::output_of(size_t i, int64_t rows) {
  Shape shape = net_.output_shape(i).with_batch(rows);
  if (in_place_[i]) return input_of(i, rows).reshaped(shape);
  return outputs_[i].get(backend_, shape);
}

Tensor HybridStep::gather_rows(const Tensor& a_local, const BatchRows& rows) {
  const Shape a_shape = net_.input_shape(net_.transition());
  if (comm_.size() == 1) return a_local.reshaped(a_shape.with_batch(rows.local()));
  Tensor a = gathered_.get(backend_, a_shape.with_batch(rows.total()));
  comm_.all_gather(a_local.f32(), a.f32(), scaled(rows.counts, a_shape.numel()));
  return a;
}

Tensor HybridStep::run_forward(RunContext& ctx, size_t begin, size_t end, const Tensor& input,
                               int64_t rows) {
  Tensor x = input;
  for (size_t i = begin; i < end; ++i) {
    Tensor y = output_of(i, rows);
    timed(profiling_, backend_, profiling_ ? &times_.forward[i] : nullptr,
          [&] { net_.layer(i).forward(ctx, x, y); });
    x = y;
  }
  return x;
}

Tensor HybridStep::run_backward(RunContext& ctx, size_t begin, size_t end, const Tensor& dy_in,
                                int64_t rows, bool want_dx) {
  Tensor dy = dy_in;
  int cur = -1;  // which grad_ buffer holds dy (-1: neither)
  for (size_t i = end; i-- > begin;) {
    Layer& layer = net_.layer(i);
    Tensor x = input_of(i, rows), y = output_of(i, rows);
    Tensor dx;
    bool need_dx = i > begin || want_dx;
    if (need_dx) {
      Shape shape = net_.input_shape(i).with_batch(rows);
      if (in_place_[i]) {
        dx = dy.reshaped(shape);
      } else {
        cur = cur == 0 ? 1 : 0;
        dx = grad_[cur].get(backend_, shape);
      }
    }
    timed(profiling_, backend_, profiling_ ? &times_.backward[i] : nullptr,
          [&] { layer.backward(ctx, x, y, dy, need_dx ? &dx : nullptr); });
    for (Param* p : layer.params()) buckets_.ready(p);
    bool reduce_here = need_dx && layer.input_grad_is_partial() &&
                       !(net_.has_model_parallel_stage() && i == net_.transition());
    if (reduce_here) comm_.all_reduce(dx.f32(), dx.numel());
    dy = dx;
  }
  return dy;
}

void HybridStep::mp_block(RunContext& ctx, const Tensor& a, const Tensor& labels,
                          const int32_t* labels_host, int64_t rows, EvalCounts* counts) {
  size_t t = net_.transition(), last = net_.size() - 1;
  mp_input_ = a;
  Tensor logits = run_forward(ctx, t, last, a, rows);
  counts->loss_sum += net_.loss().forward_loss(ctx, logits, labels);
  net_.loss().count_correct(ctx, logits, labels_host, &counts->top1, &counts->top5);
  counts->rows += rows;
  Tensor dlogits = dlogits_.get(backend_, logits.shape());
  net_.loss().backward_loss(ctx, logits, labels, dlogits);
  last_block_grad_ = run_backward(ctx, t, last, dlogits, rows, true);
}

EvalCounts HybridStep::count_local(RunContext& ctx, const Tensor& logits, const Tensor& labels,
                                   const int32_t* labels_host) {
  EvalCounts c;
  c.loss_sum = net_.loss().forward_loss(ctx, logits, labels);
  net_.loss().count_correct(ctx, logits, labels_host, &c.top1, &c.top5);
  c.rows = ctx.loss_rows;
  return c;
}

void HybridStep::sum_over_workers(EvalCounts* c) {
  float sums[3] = {static_cast<float>(c->loss_sum), static_cast<float>(c->top1),
                   static_cast<float>(c->top5)};
  comm_.all_reduce(sums, 3);
  c->loss_sum = sums[0];
  c->top1 = static_cast<int64_t>(sums[1]);
  c->top5 = static_cast<int64_t>(sums[2]);
}

EvalCounts HybridStep::train(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                             const BatchRows& rows, int64_t step, uint64_t seed,
                             const std::function<void()>& update_model_stage) {
  store_.zero_grads(backend_);
  const int K = comm_.size();
  const int64_t b = rows.local(), B = rows.total();
  const size_t t = net_.transition(), last = net_.size() - 1;
  RunContext ctx{backend_, comm_, true, seed, step, rows.row0(), B};
  dp_input_ = x;

  EvalCounts counts;
  if (!net_.has_model_parallel_stage()) {
    // Pure data parallelism: the loss sees this worker's rows, scaled by the global batch.
    Tensor logits = run_forward(ctx, 0, last, x, b);
    Tensor local_labels = labels.rows(rows.row0(), b);
    counts = count_local(ctx, logits, local_labels, labels_host + rows.row0());
    Tensor dlogits = dlogits_.get(backend_, logits.shape());
    net_.loss().backward_loss(ctx, logits, local_labels, dlogits);
    run_backward(ctx, 0, last, dlogits, b, false);
    buckets_.finish();
    sum_over_workers(&counts);
    return counts;
  }

  Tensor a_local = t > 0 ? run_forward(ctx, 0, t, x, b) : x;  // (b, d...)
  const int64_t d = net_.input_shape(t).numel();
  const Shape a_shape = net_.input_shape(t);
  Tensor da_local = da_local_.get(backend_, a_shape.with_batch(b));
  const bool partial = net_.layer(t).input_grad_is_partial();

  if (config_.transition == "allgather" || K == 1) {
    // Scheme (a): every worker gets all B rows, runs the FC stage once.
    Tensor a = gather_rows(a_local, rows);
    ctx.row0 = 0;
    mp_block(ctx, a, labels, labels_host, B, &counts);
    Tensor da = last_block_grad_;  // (B, d) partial sums
    if (partial && K > 1)
      comm_.reduce_scatter(da.f32(), da_local.f32(), scaled(rows.counts, d));
    else
      backend_.copy(da.rows(rows.row0(), b).f32(), da_local.f32(), b * d * sizeof(float));
  } else {
    // Scheme (b): worker j's block is broadcast while the previous block is computed.
    const int64_t max_rows = *std::max_element(rows.counts.begin(), rows.counts.end());
    Tensor blocks[2] = {block_[0].get(backend_, a_shape.with_batch(max_rows)),
                        block_[1].get(backend_, a_shape.with_batch(max_rows))};
    auto send_block = [&](int j) {
      if (comm_.rank() == j) backend_.copy(a_local.f32(), blocks[j % 2].f32(), b * d * sizeof(float));
      return comm_.broadcast_async(blocks[j % 2].f32(), rows.counts[j] * d, j);
    };
    bool block_update = config_.fc_update == "block";
    // Block j's input gradient is summed onto worker j while later blocks compute: worker j
    // reduces in place in da_local, the others from a staging copy that outlives the call.
    Tensor staging = da_staging_.get(backend_, a_shape.with_batch(B));
    std::vector<std::unique_ptr<CommHandle>> reductions;
    auto inflight = send_block(0);
    for (int j = 0; j < K; ++j) {
      inflight->wait();
      std::unique_ptr<CommHandle> next = j + 1 < K ? send_block(j + 1) : nullptr;
      const int64_t n = rows.counts[j], r0 = rows.row0_of(j);
      ctx.row0 = r0;
      // With block updates the FC stage sees a batch of n rows (the paper's (128K, 128)).
      ctx.loss_rows = block_update ? n : B;
      mp_block(ctx, blocks[j % 2].rows(0, n), labels.rows(r0, n), labels_host + r0, n, &counts);
      Tensor da = last_block_grad_;  // (n, d)
      if (block_update) backend_.scale(da.f32(), n * d, static_cast<float>(n) / B);
      float* target = comm_.rank() == j ? da_local.f32() : staging.rows(r0, n).f32();
      backend_.copy(da.f32(), target, n * d * sizeof(float));
      if (partial) reductions.push_back(comm_.reduce_async(target, n * d, j));
      if (block_update) update_model_stage();
      if (next) inflight = std::move(next);
    }
    for (auto& r : reductions) r->wait();
    ctx.loss_rows = B;
  }

  ctx.row0 = rows.row0();
  if (t > 0) run_backward(ctx, 0, t, da_local, b, false);
  buckets_.finish();
  return counts;
}

Tensor HybridStep::eval_logits(const Tensor& x, const BatchRows& rows) {
  const int64_t b = rows.local(), B = rows.total();
  const size_t t = net_.transition(), last = net_.size() - 1;
  RunContext ctx{backend_, comm_, false, 0, 0, rows.row0(), B};
  dp_input_ = x;
  if (!net_.has_model_parallel_stage()) return run_forward(ctx, 0, last, x, b);
  Tensor a_local = t > 0 ? run_forward(ctx, 0, t, x, b) : x;
  Tensor a = gather_rows(a_local, rows);
  ctx.row0 = 0;
  mp_input_ = a;
  return run_forward(ctx, t, last, a, B);
}

EvalCounts HybridStep::score(const Tensor& logits, const Tensor& labels, const int32_t* labels_host,
                             const BatchRows& rows) {
  const int64_t b = rows.local(), B = rows.total();
  RunContext ctx{backend_, comm_, false, 0, 0, rows.row0(), B};
  if (!net_.has_model_parallel_stage()) {
    EvalCounts out = count_local(ctx, logits, labels.rows(rows.row0(), b), labels_host + rows.row0());
    sum_over_workers(&out);
    return out;
  }
  EvalCounts out;
  out.loss_sum = net_.loss().forward_loss(ctx, logits, labels);
  net_.loss().count_correct(ctx, logits, labels_host, &out.top1, &out.top5);
  out.rows = B;
  return out;
}

EvalCounts HybridStep::evaluate(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                                const BatchRows& rows) {
  return score(eval_logits(x, rows), labels, labels_host, rows);
}

Tensor HybridStep::logits(const Tensor& x) {
  OWT_CHECK(comm_.size() == 1, "logits() runs on one worker");
  BatchRows rows;
  rows.counts = {x.size(0)};
  return eval_logits(x, rows);
}

}  // namespace owt
