// The memory model: mirrors what ParamStore, HybridStep, the layers (Layer::scratch_bytes), the
// trainer's loaders and save_checkpoint allocate for one worker, buffer by buffer.
#include "owt/parallel/memory_model.h"

#include <algorithm>
#include <set>
#include <string>

#include "owt/core/shard.h"
#include "owt/parallel/network.h"
#include "owt/parallel/run_order.h"

namespace owt {
namespace {

constexpr int64_t kFloat = sizeof(float);
// initialize_param's host staging: at most this many elements at once (src/nn/init.cpp).
constexpr int64_t kInitChunk = int64_t{1} << 24;

// Measured on the CPU backend (docs/BENCHMARKS.md, "Memory"): `owt --help` holds 58 MiB
// resident (the binary, libstdc++, oneDNN, OpenMP, yaml-cpp, zlib, OpenCV mapped and
// initialised; measured when OpenBLAS was linked too); each compute thread adds 0.3-0.5 MiB as
// it first runs (its stack, oneDNN's small buffers; the sgemm's large packing is the linear
// layer's scratch).
constexpr int64_t kProcessBytes = int64_t{58} << 20;
constexpr int64_t kThreadBytes = int64_t{512} << 10;
constexpr int64_t kMpiBytes = int64_t{8} << 20;  // Open MPI started (mpirun -np K, K > 1)

std::string rows_shape(int64_t rows, const Shape& one) { return one.with_batch(rows).str(); }

// Backward's gradient slots (run_order.h; HybridStep shares them between the stages), each
// at the largest gradient it holds.
struct GradSlots {
  std::vector<int64_t> size;
  std::vector<std::string> what;
  void backward(const Network& net, const std::vector<bool>& in_place, size_t begin, size_t end,
                int64_t rows, bool want_dx) {
    const BackwardSlots plan = plan_backward(net, in_place, begin, end, want_dx);
    for (size_t k = 0; k < plan.slot_width.size(); ++k) {
      if (k == size.size()) size.push_back(0), what.emplace_back();
      const int64_t bytes = plan.slot_width[k] * rows * kFloat;
      if (bytes <= size[k]) continue;
      size[k] = bytes;
      what[k] = cat("input gradient of ", net.layer(plan.slot_layer[k]).name(), " ",
                    rows_shape(rows, Shape{plan.slot_width[k]}));
    }
  }
};

// What write_param_tensor (src/train/checkpoint_stream.cpp) holds for one tensor of `p` on
// `rank`: rank 0 receives pieces into two buffers (one when there is one piece) and assembles
// a block of several workers' pieces in a third; the others send theirs from two. A tensor is
// cut around its sharded axis (a replicated one, or one worker's: all on rank 0) into blocks
// of whole rows when a row fits in a chunk, else into runs of at most a chunk.
struct CheckpointBuffers {
  int64_t bytes = 0, largest = 0;  // all of them, the largest one
};
CheckpointBuffers buffers(int count, int64_t piece, int64_t block = 0) {
  return CheckpointBuffers{(count * piece + block) * kFloat, std::max(piece, block) * kFloat};
}

CheckpointBuffers checkpoint_tensor_bytes(const Param& p, int rank, int K, int64_t chunk) {
  if (!p.sharded() || K == 1) {
    const int64_t n = p.full_shape.numel();
    if (rank != 0) return {};
    return buffers(n > chunk ? 2 : 1, std::min(n, chunk));
  }
  const int axis = p.placement.dim;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= p.full_shape[d];
  for (int d = axis + 1; d < p.full_shape.rank(); ++d) inner *= p.full_shape[d];
  const int64_t full = p.full_shape[axis], row = full * inner;
  auto rows_of = [&](int r) {
    return static_cast<int64_t>(shard_end(full, r, K) - shard_begin(full, r, K));
  };
  int64_t widest = 0;  // the largest worker's run of one row
  for (int r = 0; r < K; ++r) widest = std::max(widest, rows_of(r) * inner);
  const int64_t mine = rows_of(rank) * inner;
  if (row <= chunk) {  // blocks of whole rows, every worker's piece of each
    const int64_t rows = std::min(outer, chunk / row);
    if (rank == 0) return buffers(2, rows * widest, rows * row);
    const int64_t blocks = (outer + rows - 1) / rows;
    return buffers(blocks > 1 ? 2 : 1, rows * mine);
  }
  if (rank == 0) return buffers(2, std::min(chunk, widest));
  const int64_t pieces = outer * ((mine + chunk - 1) / chunk);
  return buffers(pieces > 1 ? 2 : 1, std::min(chunk, mine));
}

}  // namespace

int64_t MemoryEstimate::activation_total() const {
  return activations + activation_grads + transition + scratch;
}

int64_t MemoryEstimate::transient() const {
  constexpr int64_t kMapped = int64_t{32} << 20;
  int64_t heap = 0, mapped = 0;
  auto take = [&](int64_t bytes, int64_t largest_buffer) {
    int64_t& where = largest_buffer < kMapped ? heap : mapped;
    where = std::max(where, bytes);
  };
  take(initialization, initialization);
  take(step_host, step_host);
  take(evaluation, evaluation / 2);  // the host and the device batch
  take(checkpoint, checkpoint_buffer);
  return heap + mapped;
}

int64_t MemoryEstimate::peak() const {
  return parameters + gradients + optimizer_state + activation_total() + data_loader +
         communication + transient() + runtime;
}

int64_t runtime_bytes(int threads, int workers) {
  return kProcessBytes + (workers > 1 ? kMpiBytes : 0) + kThreadBytes * std::max(0, threads);
}

MemoryEstimate estimate_memory(const NetworkSpec& spec, const MemoryRun& run, int rank) {
  const int K = run.workers;
  const int64_t b = run.batch, B = b * K;
  Network net(spec, rank, K, run.mode);
  const size_t last = net.size() - 1, t = net.transition();
  const bool mp = net.has_model_parallel_stage();
  const bool pipelined = mp && K > 1 && spec.parallel.transition == Transition::Pipelined;
  const std::vector<bool> in_place = in_place_layers(net);
  // Rows a layer sees at most: the data-parallel stage this worker's b; the model-parallel
  // stage all B (evaluation gathers all B rows in both schemes); in backward, the pipelined
  // scheme's one block of b (split_rows splits K x b evenly).
  auto forward_rows = [&](size_t i) { return mp && i >= t ? B : b; };
  const int64_t stage_rows = mp ? (pipelined ? b : B) : b;

  MemoryEstimate m;
  m.rank = rank;
  std::vector<MemoryBuffer> buffers;
  auto add = [&](int64_t* term, std::string what, int64_t bytes) {
    *term += bytes;
    if (bytes > 0) buffers.push_back(MemoryBuffer{std::move(what), bytes});
  };

  // ParamStore: value, gradient and momentum of every param's local part, each padded to 256
  // bytes (Param::stored_numel). With K > 1 the summed gradients are all-reduced in buckets,
  // all of them in flight by the end of backward, and MPI holds a copy of each.
  for (Param* p : net.params()) {
    const int64_t bytes = p->stored_numel() * kFloat;
    m.parameters += bytes;
    m.gradients += bytes;
    m.optimizer_state += bytes;
    if (K > 1 && p->summed_over_workers()) m.communication += bytes;
  }
  for (Param* p : net.buffers()) m.parameters += p->stored_numel() * kFloat;

  // The input batch (the trainer's x_dev, (b, C, H, W)) and every output not written in place.
  add(&m.activations, cat("input ", rows_shape(b, spec.input)), b * spec.input.numel() * kFloat);
  for (size_t i = 0; i < last; ++i) {
    if (in_place[i]) continue;
    const int64_t rows = forward_rows(i);
    add(&m.activations, cat(net.layer(i).name(), " output ", rows_shape(rows, net.output_shape(i))),
        rows * net.output_shape(i).numel() * kFloat);
  }

  // Input gradients: backward's slots (a ping-pong pair for a chain), and dlogits (the loss's
  // input, a class shard).
  GradSlots grads;
  if (mp) {
    grads.backward(net, in_place, t, last, stage_rows, true);
    grads.backward(net, in_place, 0, t, b, false);
  } else {
    grads.backward(net, in_place, 0, last, b, false);
  }
  for (size_t j = 0; j < grads.size.size(); ++j) add(&m.activation_grads, grads.what[j], grads.size[j]);
  const Shape& logits = net.input_shape(last);
  add(&m.activation_grads, cat("dlogits ", rows_shape(stage_rows, logits)),
      stage_rows * logits.numel() * kFloat);

  // The transition: all B rows gathered (K > 1), this worker's rows of their gradient; the
  // pipelined scheme's two blocks in flight and the staging copy of every block's gradient.
  if (mp) {
    const Shape& a = net.input_shape(t);
    const int64_t d = a.numel() * kFloat;
    if (K > 1) add(&m.transition, cat("gathered rows ", rows_shape(B, a)), B * d);
    add(&m.transition, cat("transition gradient ", rows_shape(b, a)), b * d);
    if (pipelined) {
      add(&m.transition, cat("pipelined blocks 2 x ", rows_shape(b, a)), 2 * b * d);
      add(&m.transition, cat("gradient staging ", rows_shape(B, a)), B * d);
      if (net.layer(t).input_grad_placement().is_partial()) m.communication += B * d;
    }
  }

  std::set<std::string> shared_scratch;  // keys of scratch the backend keeps once (Layer::scratch_key)
  for (size_t i = 0; i < net.size(); ++i) {
    const std::string key = net.layer(i).scratch_key(forward_rows(i));
    if (key.empty() || shared_scratch.insert(key).second)
      add(&m.scratch, cat(net.layer(i).name(), " scratch"), net.layer(i).scratch_bytes(forward_rows(i)));
    m.step_host = std::max(m.step_host, net.layer(i).host_scratch_bytes(forward_rows(i)));
  }

  // Loaders (train and eval, batches of b): `prefetch` batches queued and the one handed over
  // (uploaded from where it lies, no copy of it), each (b, C, H, W); per decode thread an
  // image and a resize buffer; the shuffle orders of two epochs (train) or one (eval), 8 bytes
  // an example. The trainer's labels of the global batch (B).
  const int64_t example = spec.input.numel() * kFloat;
  const int64_t loader = (run.prefetch + 1) * b * (example + 4) + 2 * run.loader_threads * example;
  m.data_loader = 2 * loader + 8 * (2 * run.train_examples + run.test_examples) + 4 * B;
  // An evaluation's own device batch (b, C, H, W) and its labels (B) on the host and device.
  m.evaluation = b * example + 2 * 4 * B;
  // Initialising a param stages its values on the host; saving a checkpoint streams one
  // tensor at a time. Both hold their largest param's buffers at most.
  const int64_t chunk = std::max<int64_t>(1, run.checkpoint_chunk / kFloat);
  for (Param* p : net.params()) {
    m.initialization = std::max(m.initialization, std::min(p->local_shape().numel(), kInitChunk) * kFloat);
    const CheckpointBuffers ck = checkpoint_tensor_bytes(*p, rank, K, chunk);
    if (ck.bytes > m.checkpoint) m.checkpoint = ck.bytes, m.checkpoint_buffer = ck.largest;
  }
  m.runtime = runtime_bytes(run.threads, K);

  std::stable_sort(buffers.begin(), buffers.end(),
                   [](const MemoryBuffer& x, const MemoryBuffer& y) { return x.bytes > y.bytes; });
  m.largest = std::move(buffers);
  return m;
}

MemoryEstimate estimate_memory_largest(const NetworkSpec& spec, const MemoryRun& run) {
  MemoryEstimate best = estimate_memory(spec, run, 0);
  for (int r = 1; r < run.workers; ++r) {
    MemoryEstimate m = estimate_memory(spec, run, r);
    if (m.peak() > best.peak()) best = std::move(m);
  }
  return best;
}

}  // namespace owt
