// HybridStep: forward, transition, model-parallel stage, loss, backward and gradient sums for
// one global batch. Layers are driven generically; what to communicate follows from placements.
//
// Invariants of the step (read these before changing it; docs/ARCHITECTURE.md has the why):
// 1. Rows. Worker k holds rows [row0_k, row0_k + b_k) of the global batch of B rows, in rank
//    order (BatchRows). The data-parallel stage sees only those rows (Placement::rows()); the
//    model-parallel stage sees all B rows in that order on every worker, so the global row r
//    is the same example everywhere, and dropout and the loss are keyed by it (ctx.row0).
// 2. The loss is the mean over all B rows: every layer's gradient is of (loss sum / B), so the
//    replicated gradients are *summed* over workers, never averaged. With block updates a
//    block of n rows is its own batch (loss over n) and its input gradient is scaled by n / B,
//    so the data-parallel stage still sees the gradient of the mean over B.
// 3. Partial sums. A column-parallel linear's input gradient is Partial (each worker's
//    dy_k W_k). Inside the model-parallel stage it is all-reduced in run_backward; at the
//    transition it is reduce-scattered by rows (scheme a) or reduced onto block j's owner
//    (scheme b), so worker k receives the gradient of exactly its own rows, whole.
// 4. Which params are summed: those whose gradient is Partial (replicated params of layers
//    that saw only this worker's rows). Replicated params of the model-parallel stage (a
//    row-parallel linear's bias) see all B rows on every worker: complete, never summed; the
//    buckets hold only the Partial ones (ParamStore::summed()).
// 5. Activations are owned by the step: inputs_[i] is what layer i read in this pass, so
//    backward never guesses which tensor fed a layer (block inputs, gathered rows, x).
// 6. Graphs. The data-parallel stage may be a graph (`inputs:`); it runs in file order, and a
//    gradient read by several layers is summed in its slot (run_order.h). The model-parallel
//    stage is a chain (Network checks it).
#include "owt/parallel/hybrid_step.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <tuple>

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

HybridStep::HybridStep(Network& net, ParamStore& store, Backend& backend, Communicator& comm,
                       ParallelSpec spec, size_t bucket_bytes)
    : net_(net), store_(store), backend_(backend), comm_(comm), spec_(spec),
      block_updates_(spec.fc_update == FcUpdate::Block && spec.transition == Transition::Pipelined &&
                     net.has_model_parallel_stage()),
      buckets_(store, comm, bucket_bytes), in_place_(in_place_layers(net)), inputs_(net.size()),
      outputs_(net.size()) {}

void HybridStep::enable_profiling(bool on) {
  profiling_ = on;
  times_.forward.assign(net_.size(), {});
  times_.backward.assign(net_.size(), {});
}

double* HybridStep::forward_clock(size_t i) { return profiling_ ? &times_.forward[i].back() : nullptr; }
double* HybridStep::backward_clock(size_t i) { return profiling_ ? &times_.backward[i].back() : nullptr; }

RunContext HybridStep::context(bool training, uint64_t seed, int64_t step, const BatchRows& rows) {
  return RunContext{backend_, comm_, training, seed, step, rows.row0(), rows.total(), rows.total()};
}

// ---- the step ----------------------------------------------------------------------------

EvalCounts HybridStep::train(const Tensor& x, const Tensor& labels_device,
                             const int32_t* labels_host, const BatchRows& rows, int64_t step,
                             uint64_t seed, const Update& update_model_stage) {
  store_.zero_grads(backend_);
  if (profiling_)
    for (size_t i = 0; i < net_.size(); ++i) times_.forward[i].push_back(0), times_.backward[i].push_back(0);
  RunContext ctx = context(true, seed, step, rows);
  const Labels labels{labels_device, labels_host};
  if (!net_.has_model_parallel_stage()) return train_data_parallel(ctx, x, labels, rows);

  EvalCounts counts;
  Tensor a_local = data_parallel_forward(ctx, x, rows.local());  // (b, d...)
  Tensor da_local = spec_.transition == Transition::Pipelined && comm_.size() > 1
                        ? pipelined_scheme(ctx, a_local, labels, rows, &counts, update_model_stage)
                        : allgather_scheme(ctx, a_local, labels, rows, &counts, update_model_stage);
  data_parallel_backward(ctx, da_local, rows.local());
  buckets_.finish();
  return counts;
}

// Pure data parallelism: the loss sees this worker's rows, scaled by the global batch.
EvalCounts HybridStep::train_data_parallel(RunContext& ctx, const Tensor& x, const Labels& labels,
                                           const BatchRows& rows) {
  const int64_t b = rows.local();
  const Labels mine = labels.rows(rows.row0(), b);
  Tensor logits = run_forward(ctx, 0, net_.size() - 1, x, b);
  EvalCounts counts;
  Tensor dlogits = loss_pass(ctx, logits, mine, &counts);
  run_backward(ctx, 0, net_.size() - 1, dlogits, b, false);
  buckets_.finish();
  sum_over_workers(&counts);
  return counts;
}

// The data-parallel stage: this worker's rows up to the transition's input, (b, d...).
Tensor HybridStep::data_parallel_forward(RunContext& ctx, const Tensor& x, int64_t rows) {
  const size_t t = net_.transition();
  return t > 0 ? run_forward(ctx, 0, t, x, rows) : x;
}

// Scheme (a): every worker gathers all B rows and runs the model-parallel stage once on them.
Tensor HybridStep::allgather_scheme(RunContext& ctx, const Tensor& a_local, const Labels& labels,
                                    const BatchRows& rows, EvalCounts* counts, const Update& update) {
  Tensor a = transition(a_local, rows);  // (B, d...)
  RunContext all_rows = ctx;
  all_rows.row0 = 0;
  StageResult fc = model_parallel_stage(all_rows, a, labels, rows.total());
  *counts += fc.counts;
  if (block_updates_) update();  // one worker: the one block is the whole batch
  return transition_backward(fc.input_grad, rows);
}

// Scheme (b), cuda-convnet2's: worker j's block of rows is broadcast while block j-1 runs the
// model-parallel stage, and block j's input gradient is reduced onto worker j while later
// blocks compute: worker j reduces in place in da_local, the others from a staging copy that
// outlives the call.
Tensor HybridStep::pipelined_scheme(RunContext& ctx, const Tensor& a_local, const Labels& labels,
                                    const BatchRows& rows, EvalCounts* counts, const Update& update) {
  const int K = comm_.size();
  const Shape a_shape = net_.input_shape(net_.transition());
  const int64_t d = a_shape.numel(), b = rows.local(), B = rows.total();
  const bool partial = net_.layer(net_.transition()).input_grad_placement().is_partial();
  Tensor da_local = da_local_.get(backend_, a_shape.with_batch(b));
  Tensor staging = da_staging_.get(backend_, a_shape.with_batch(B));
  const int64_t max_rows = *std::max_element(rows.counts.begin(), rows.counts.end());
  Tensor blocks[2] = {block_[0].get(backend_, a_shape.with_batch(max_rows)),
                      block_[1].get(backend_, a_shape.with_batch(max_rows))};
  auto send_block = [&](int j) {
    if (comm_.rank() == j) backend_.copy(a_local.f32(), blocks[j % 2].f32(), b * d * sizeof(float));
    return comm_.broadcast_async(blocks[j % 2].f32(), rows.counts[j] * d, j);
  };

  std::vector<std::unique_ptr<CommHandle>> reductions;
  std::unique_ptr<CommHandle> inflight = send_block(0);
  for (int j = 0; j < K; ++j) {
    inflight->wait();
    std::unique_ptr<CommHandle> next = j + 1 < K ? send_block(j + 1) : nullptr;
    const int64_t n = rows.counts[j], r0 = rows.row0_of(j);
    RunContext block = ctx;
    block.row0 = r0;
    block.loss_rows = block_updates_ ? n : B;  // the paper's (128K, 128): FC batches of n rows
    StageResult fc = model_parallel_stage(block, blocks[j % 2].rows(0, n), labels.rows(r0, n), n);
    *counts += fc.counts;
    Tensor da = fc.input_grad;  // (n, d)
    if (block_updates_) backend_.scale(da.f32(), n * d, static_cast<float>(n) / B);
    float* target = comm_.rank() == j ? da_local.f32() : staging.rows(r0, n).f32();
    backend_.copy(da.f32(), target, n * d * sizeof(float));
    if (partial) reductions.push_back(comm_.reduce_async(target, n * d, j));
    if (block_updates_) update();
    if (next) inflight = std::move(next);
  }
  for (auto& r : reductions) r->wait();
  return da_local;
}

// The transition of scheme (a): every worker's rows of the stage boundary, all B of them.
Tensor HybridStep::transition(const Tensor& a_local, const BatchRows& rows) {
  const Shape a_shape = net_.input_shape(net_.transition());
  if (comm_.size() == 1) return a_local.reshaped(a_shape.with_batch(rows.local()));
  Tensor a = gathered_.get(backend_, a_shape.with_batch(rows.total()));
  comm_.all_gather(a_local.f32(), a.f32(), scaled(rows.counts, a_shape.numel()));
  return a;
}

// The model-parallel stage forward and backward on one block of global rows (all B in scheme
// a, one worker's in scheme b): logits, loss and hits, and the gradient w.r.t. the block.
HybridStep::StageResult HybridStep::model_parallel_stage(RunContext& ctx, const Tensor& a,
                                                         const Labels& labels, int64_t rows) {
  const size_t t = net_.transition(), last = net_.size() - 1;
  StageResult out;
  Tensor logits = run_forward(ctx, t, last, a, rows);
  Tensor dlogits = loss_pass(ctx, logits, labels, &out.counts);
  out.counts.rows = rows;
  out.input_grad = run_backward(ctx, t, last, dlogits, rows, true);
  return out;
}

// This worker's rows of the gradient w.r.t. the transition's input (B, d...) -> (b, d...):
// Partial sums are reduce-scattered by rows; a Replicate gradient is whole everywhere already.
Tensor HybridStep::transition_backward(const Tensor& da, const BatchRows& rows) {
  const Shape a_shape = net_.input_shape(net_.transition());
  const int64_t d = a_shape.numel(), b = rows.local();
  Tensor da_local = da_local_.get(backend_, a_shape.with_batch(b));
  if (net_.layer(net_.transition()).input_grad_placement().is_partial())
    comm_.reduce_scatter(da.f32(), da_local.f32(), scaled(rows.counts, d));
  else
    backend_.copy(da.rows(rows.row0(), b).f32(), da_local.f32(), b * d * sizeof(float));
  return da_local;
}

// The data-parallel stage backward on this worker's rows (ctx.row0 is still its first row).
void HybridStep::data_parallel_backward(RunContext& ctx, const Tensor& da_local, int64_t rows) {
  if (net_.transition() > 0) run_backward(ctx, 0, net_.transition(), da_local, rows, false);
}

// ---- layers in order ---------------------------------------------------------------------

Tensor HybridStep::output_of(size_t i, int64_t rows) {
  Shape shape = net_.output_shape(i).with_batch(rows);
  if (in_place_[i]) return inputs_[i][0].reshaped(shape);
  return outputs_[i].get(backend_, shape);
}

// Layers of a stage in file order (a topological order: inputs come first). An input from
// outside [begin, end) is the stage's input: the batch, or the rows the transition delivered.
Tensor HybridStep::run_forward(RunContext& ctx, size_t begin, size_t end, const Tensor& input,
                               int64_t rows) {
  for (size_t i = begin; i < end; ++i) {
    std::vector<Tensor>& x = inputs_[i];
    x.clear();
    for (size_t p : net_.inputs_of(i))
      x.push_back(p == Network::kNetworkInput || p < begin ? input : output_of(p, rows));
    Tensor y = output_of(i, rows);
    timed(profiling_, backend_, forward_clock(i), [&] { net_.layer(i).forward_inputs(ctx, x, y); });
  }
  return output_of(end - 1, rows);
}

const BackwardSlots& HybridStep::backward_slots(size_t begin, size_t end, bool want_dx) {
  auto key = std::make_tuple(begin, end, want_dx);
  auto it = slot_plans_.find(key);
  if (it == slot_plans_.end())
    it = slot_plans_.emplace(key, plan_backward(net_, in_place_, begin, end, want_dx)).first;
  return it->second;
}

// Reverse file order; each gradient lives in the slot plan_backward gave it (run_order.h).
Tensor HybridStep::run_backward(RunContext& ctx, size_t begin, size_t end, const Tensor& dy_in,
                                int64_t rows, bool want_dx) {
  const BackwardSlots& plan = backward_slots(begin, end, want_dx);
  if (grad_.size() < plan.slot_width.size()) grad_.resize(plan.slot_width.size());
  std::vector<Tensor> slots;
  for (size_t k = 0; k < plan.slot_width.size(); ++k)
    slots.push_back(grad_[k].get(backend_, Shape{plan.slot_width[k] * rows}));
  auto slot = [&](int k, const Shape& shape) {
    return k == BackwardSlots::kStageGradient ? dy_in.reshaped(shape) : slots[k].view(0, shape);
  };
  for (size_t i = end; i-- > begin;) {
    Layer& layer = net_.layer(i);
    const BackwardSlots::Step& st = plan.steps[i - begin];
    const std::vector<size_t>& from = net_.inputs_of(i);
    Tensor y = output_of(i, rows);
    Tensor dy = slot(st.dy, y.shape());
    std::vector<Tensor> dx(from.size());
    std::vector<Tensor*> want(from.size(), nullptr);
    for (size_t k = 0; k < from.size(); ++k)
      if (st.dx[k] != BackwardSlots::kNone) {
        dx[k] = slot(st.dx[k], inputs_[i][k].shape());
        want[k] = &dx[k];
      }
    timed(profiling_, backend_, backward_clock(i), [&] { layer.backward_inputs(ctx, inputs_[i], y, dy, want); });
    for (Param* p : layer.params()) buckets_.ready(p);
    // A Partial input gradient inside the model-parallel stage becomes whole (Replicate) for
    // the layer before; at the transition, transition_backward reduces it by rows instead.
    const bool at_transition = net_.has_model_parallel_stage() && i == net_.transition();
    for (size_t k = 0; k < from.size(); ++k) {
      if (!want[k]) continue;
      if (!at_transition && layer.input_grad_placement().is_partial())
        comm_.all_reduce(dx[k].f32(), dx[k].numel());
      if (st.add_into[k])
        backend_.axpy(1.f, dx[k].f32(), slot(st.target[k], dx[k].shape()).f32(), dx[k].numel());
    }
  }
  return want_dx ? slot(plan.input_slot, inputs_[begin][0].shape()) : Tensor();
}

// ---- losses and counts -------------------------------------------------------------------

Tensor HybridStep::loss_pass(RunContext& ctx, const Tensor& logits, const Labels& labels,
                             EvalCounts* counts) {
  const size_t loss = net_.size() - 1;
  timed(profiling_, backend_, forward_clock(loss), [&] { *counts = count_local(ctx, logits, labels); });
  Tensor dlogits = dlogits_.get(backend_, logits.shape());
  timed(profiling_, backend_, backward_clock(loss),
        [&] { net_.loss().backward_loss(ctx, logits, labels.device, dlogits); });
  return dlogits;
}

EvalCounts HybridStep::count_local(RunContext& ctx, const Tensor& logits, const Labels& labels) {
  EvalCounts c;
  c.loss_sum = net_.loss().forward_loss(ctx, logits, labels.device);
  net_.loss().count_correct(ctx, logits, labels.host, &c.top1, &c.top5);
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

// ---- evaluation --------------------------------------------------------------------------

Tensor HybridStep::eval_logits(const Tensor& x, const BatchRows& rows) {
  RunContext ctx = context(false, 0, 0, rows);
  const size_t last = net_.size() - 1;
  if (!net_.has_model_parallel_stage()) return run_forward(ctx, 0, last, x, rows.local());
  Tensor a = transition(data_parallel_forward(ctx, x, rows.local()), rows);
  ctx.row0 = 0;
  return run_forward(ctx, net_.transition(), last, a, rows.total());
}

EvalCounts HybridStep::score(const Tensor& logits, const Tensor& labels_device,
                             const int32_t* labels_host, const BatchRows& rows) {
  RunContext ctx = context(false, 0, 0, rows);
  const Labels labels{labels_device, labels_host};
  if (!net_.has_model_parallel_stage()) {
    EvalCounts out = count_local(ctx, logits, labels.rows(rows.row0(), rows.local()));
    sum_over_workers(&out);
    return out;
  }
  EvalCounts out;
  out.loss_sum = net_.loss().forward_loss(ctx, logits, labels.device);
  net_.loss().count_correct(ctx, logits, labels.host, &out.top1, &out.top5);
  out.rows = rows.total();
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
