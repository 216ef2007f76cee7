// evaluate_dataset walks a split in global batches (the last one partial), each worker feeding
// its rows; counts come back identical on every worker.
#include "owt/train/evaluate.h"

#include <algorithm>

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

EvalCounts evaluate_dataset(HybridStep& stepper, const Dataset& data, BatchLoader& loader,
                            const Shape& input, int64_t batch, Backend& backend, Communicator& comm) {
  return evaluate_views(stepper, data, {&loader}, input, batch, backend, comm);
}

EvalCounts evaluate_views(HybridStep& stepper, const Dataset& data,
                          const std::vector<BatchLoader*>& views, const Shape& input,
                          int64_t batch, Backend& backend, Communicator& comm) {
  const int K = comm.size();
  const int64_t B = batch * K;
  const float weight = 1.f / static_cast<float>(views.size());
  std::vector<float> x_host(batch * input.numel());
  std::vector<int32_t> local_labels(batch), labels_host;
  Tensor x_dev = backend.empty(input.with_batch(batch));
  Tensor labels_dev = backend.empty(Shape{B}, DType::I32);
  Tensor mean;  // logits averaged over the views, when there are several
  EvalCounts total;
  for (int64_t i = 0; i < views.front()->batches_per_epoch(); ++i) {
    const int64_t rows = std::min(B, data.size() - i * B);
    BatchRows split = split_rows(rows, comm.rank(), K);
    global_labels(*views.front(), data, 0, i, B, rows, labels_host);
    backend.from_host(labels_host.data(), labels_dev.i32(), rows * sizeof(int32_t));
    Tensor logits;
    for (size_t v = 0; v < views.size(); ++v) {
      views[v]->load(0, i, x_host.data(), local_labels.data());
      backend.from_host(x_host.data(), x_dev.f32(), split.local() * input.numel() * sizeof(float));
      logits = stepper.eval_logits(x_dev.rows(0, split.local()), split);
      if (views.size() == 1) break;
      if (v == 0) {
        mean = backend.empty(logits.shape());
        backend.fill(mean.f32(), mean.numel(), 0.f);
      }
      backend.axpy(weight, logits.f32(), mean.f32(), logits.numel());
    }
    EvalCounts c = stepper.score(views.size() == 1 ? logits : mean, labels_dev.rows(0, rows),
                                 labels_host.data(), split);
    total.loss_sum += c.loss_sum;
    total.top1 += c.top1;
    total.top5 += c.top5;
    total.rows += c.rows;
  }
  return total;
}

}  // namespace owt
