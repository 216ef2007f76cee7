// evaluate_dataset walks a split in global batches (the last one partial), each worker feeding
// its rows; counts (and the confusion matrix) come back identical on every worker, logits are
// gathered on rank 0.
#include "owt/train/evaluate.h"

#include <algorithm>

#include "owt/core/error.h"
#include "owt/core/shard.h"
#include "owt/train/metrics.h"

namespace owt {

BatchRows split_rows(int64_t rows, int rank, int workers) {
  BatchRows r;
  r.rank = rank;
  for (int w = 0; w < workers; ++w)
    r.counts.push_back(static_cast<int64_t>(shard_end(rows, w, workers) - shard_begin(rows, w, workers)));
  return r;
}

void global_labels(BatchLoader& loader, const Dataset& data, int64_t epoch, int64_t index,
                   int64_t global_batch, int64_t rows, std::vector<int32_t>& out) {
  const std::vector<int64_t>& order = loader.order(epoch);
  out.resize(rows);
  for (int64_t r = 0; r < rows; ++r) out[r] = data.label(order[index * global_batch + r]);
}

namespace {

// The logits of one global batch as the loss sees them -> (rows, classes) on rank 0, placed by
// the loss layer's input placement: this worker's rows (a row shard), a class shard of every
// row (shards split as core/shard.h splits them), or whole on every worker.
void gather_logits(const Tensor& logits, const Placement& place, const BatchRows& split,
                   int64_t classes, Backend& backend, Communicator& comm, std::vector<float>& out) {
  const int K = comm.size();
  const int64_t rows = split.total();
  std::vector<float> mine(logits.numel());
  backend.to_host(logits.f32(), mine.data(), mine.size() * sizeof(float));
  std::vector<float> all;
  if (K == 1 || place.is_replicate()) {
    all = std::move(mine);
  } else if (place.is_shard(0)) {
    all.resize(rows * classes);
    std::vector<size_t> counts;
    for (int64_t c : split.counts) counts.push_back(static_cast<size_t>(c * classes));
    comm.all_gather(mine.data(), all.data(), counts);
  } else {
    OWT_CHECK(place.is_feature_shard() && place.size == classes &&
                  place.begin == static_cast<int64_t>(shard_begin(classes, comm.rank(), K)),
              "logits placed as ", place.str());
    std::vector<float> blocks(rows * classes);
    comm.all_gather(mine.data(), blocks.data(), shard_counts(classes, K, rows));
    all.resize(rows * classes);
    size_t offset = 0;
    for (int r = 0; r < K; ++r) {
      const int64_t begin = shard_begin(classes, r, K), n = shard_end(classes, r, K) - begin;
      for (int64_t row = 0; row < rows; ++row)
        std::copy_n(blocks.data() + offset + row * n, n, all.data() + row * classes + begin);
      offset += rows * n;
    }
  }
  if (comm.rank() == 0) out.insert(out.end(), all.begin(), all.end());
}

// Adds one global batch to the confusion matrix: the loss layer predicts a class for every row
// it sees (this worker's rows, or all of them); predictions of a row shard are gathered.
void add_confusion(Network& net, const Tensor& logits, const BatchRows& split,
                   const int32_t* labels, int64_t classes, Backend& backend, Communicator& comm,
                   std::vector<int64_t>& confusion) {
  RunContext ctx{backend, comm};
  ctx.training = false;
  const int64_t n = logits.size(0), rows = split.total();
  std::vector<int32_t> mine(n);
  net.loss().predict(ctx, logits, mine.data());
  std::vector<int32_t> predicted(mine);
  if (net.placement(net.size() - 1).input.is_shard(0) && comm.size() > 1) {
    OWT_CHECK(n == split.local(), "logits have ", n, " rows, this worker ", split.local());
    std::vector<float> as_float(mine.begin(), mine.end()), all(rows);  // classes < 2^24: exact
    std::vector<size_t> counts(split.counts.begin(), split.counts.end());
    comm.all_gather(as_float.data(), all.data(), counts);
    predicted.assign(all.begin(), all.end());
  }
  OWT_CHECK(static_cast<int64_t>(predicted.size()) == rows, "predicted ", predicted.size(), " of ", rows);
  for (int64_t r = 0; r < rows; ++r) ++confusion[labels[r] * classes + predicted[r]];
}

// Every batch of the split through every view; `net` is needed for what opt asks beyond counts.
EvalResult run_evaluation(HybridStep& stepper, Network* net, const Dataset& data,
                          const std::vector<BatchLoader*>& views, const Shape& input,
                          int64_t classes, int64_t batch, Backend& backend, Communicator& comm,
                          const EvalOptions& opt) {
  const int K = comm.size();
  const int64_t B = batch * K;
  const float weight = 1.f / static_cast<float>(views.size());
  std::vector<int32_t> labels_host;
  Tensor x_dev = backend.empty(input.with_batch(batch));
  Tensor labels_dev = backend.empty(Shape{B}, DType::I32);
  Tensor mean;  // logits averaged over the views, when there are several
  EvalResult result;
  result.classes = classes;
  if (opt.confusion) result.confusion.assign(classes * classes, 0);
  ProgressBar bar("evaluating", static_cast<double>(data.size()), opt.progress && comm.rank() == 0);
  for (int64_t i = 0; i < views.front()->batches_per_epoch(); ++i) {
    const int64_t rows = std::min(B, data.size() - i * B);
    BatchRows split = split_rows(rows, comm.rank(), K);
    global_labels(*views.front(), data, 0, i, B, rows, labels_host);
    backend.from_host(labels_host.data(), labels_dev.i32(), rows * sizeof(int32_t));
    Tensor logits;
    for (size_t v = 0; v < views.size(); ++v) {
      const LoadedBatch loaded = views[v]->next(0, i);  // uploaded without a copy
      backend.upload(loaded.images, 0, x_dev.f32(), split.local() * input.numel() * sizeof(float));
      logits = stepper.eval_logits(x_dev.rows(0, split.local()), split);
      if (views.size() == 1) break;
      if (v == 0) {
        mean = backend.empty(logits.shape());
        backend.fill(mean.f32(), mean.numel(), 0.f);
      }
      backend.axpy(weight, logits.f32(), mean.f32(), logits.numel());
    }
    const Tensor& scored = views.size() == 1 ? logits : mean;
    result.counts += stepper.score(scored, labels_dev.rows(0, rows), labels_host.data(), split);
    if (opt.confusion)
      add_confusion(*net, scored, split, labels_host.data(), classes, backend, comm, result.confusion);
    if (opt.logits)
      gather_logits(scored, net->placement(net->size() - 1).input, split, classes, backend, comm,
                    result.logits);
    bar.update(static_cast<double>(i * B + rows));
  }
  return result;
}

}  // namespace

EvalCounts evaluate_dataset(HybridStep& stepper, const Dataset& data, BatchLoader& loader,
                            const Shape& input, int64_t batch, Backend& backend, Communicator& comm) {
  return evaluate_views(stepper, data, {&loader}, input, batch, backend, comm);
}

EvalCounts evaluate_views(HybridStep& stepper, const Dataset& data,
                          const std::vector<BatchLoader*>& views, const Shape& input,
                          int64_t batch, Backend& backend, Communicator& comm) {
  return run_evaluation(stepper, nullptr, data, views, input, 0, batch, backend, comm, {}).counts;
}

EvalResult evaluate_model(Model& model, const ModelConfig& cfg, const Dataset& data,
                          const std::vector<BatchLoader*>& views, Backend& backend,
                          Communicator& comm, const EvalOptions& opt) {
  return run_evaluation(model.stepper(), &model.network(), data, views, cfg.net.input,
                        cfg.net.classes, cfg.solver.batch, backend, comm, opt);
}

}  // namespace owt
