// The memory model: the bytes one worker holds while training, term by term, for the hybrid
// plan or `--parallel dp`, from the network alone (as plan_costs predicts traffic) plus the few
// numbers of a run that the network does not say (batch, threads, loader and checkpoint sizes).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "owt/parallel/network_spec.h"
#include "owt/parallel/plan.h"

namespace owt {

// What a run adds to the network: the caller fills these from the model file and the flags.
struct MemoryRun {
  int workers = 1;                 // K
  int64_t batch = 0;               // rows per worker (b); the global batch is K x b
  ParallelMode mode = ParallelMode::Owt;
  int threads = 1;                 // compute threads per worker (OpenMP)
  int loader_threads = 1;          // decode threads per loader
  int prefetch = 2;                // batches each loader decodes ahead (data.prefetch)
  int64_t train_examples = 0;      // for the loaders' shuffle orders; 0 when unknown
  int64_t test_examples = 0;
  int64_t checkpoint_chunk = int64_t{64} << 20;  // bytes save_checkpoint moves at once (train/)
};

// One buffer, for the "largest" list: "fc2 output (256, 100000)".
struct MemoryBuffer {
  std::string what;
  int64_t bytes = 0;
};

// Bytes of one worker (rank), by what holds them.
struct MemoryEstimate {
  int rank = 0;
  // The model's state: every param's local part (its shard, or all of a replicated param),
  // its gradient and its SGD momentum (Param::value, grad, state; ParamStore).
  int64_t parameters = 0, gradients = 0, optimizer_state = 0;
  // What a step keeps (HybridStep): layer outputs kept for backward and the input batch; the
  // input gradients (two ping-pong buffers and dlogits); the transition's buffers (all K x b
  // rows gathered at the first model-parallel layer, the pipelined blocks); layer scratch
  // (Layer::scratch_bytes: maxpool argmax, LRN scale, gathered columns, the loss's host copy
  // of its logits shard, convolution workspace).
  int64_t activations = 0, activation_grads = 0, transition = 0, scratch = 0;
  // The loaders' prefetched batches (train and eval), the trainer's host batch, the orders.
  int64_t data_loader = 0;
  // MPI's buffers for collectives in flight (K > 1, measured with Open MPI): a temporary copy
  // of every gradient bucket being all-reduced (all of the summed gradients), and of the
  // pipelined transition's block gradients being reduced (K blocks).
  int64_t communication = 0;
  // Host buffers taken for a moment and freed, never two at once: the host staging of
  // initialising the largest param (at most 64 MiB); a step's host copies
  // (Layer::host_scratch_bytes: the loss's copy of its logits shard); an evaluation's own batch
  // buffers; saving a checkpoint (pieces of at most MemoryRun::checkpoint_chunk: two, and a
  // block on rank 0; checkpoint_buffer is the largest one).
  int64_t initialization = 0, step_host = 0, evaluation = 0, checkpoint = 0;
  int64_t checkpoint_buffer = 0;
  // The process with its libraries (owt --help), MPI's when K > 1, and the per-thread buffers
  // of OpenBLAS, oneDNN and OpenMP; measured on the CPU backend (docs/BENCHMARKS.md, "Memory").
  int64_t runtime = 0;
  std::vector<MemoryBuffer> largest;  // the biggest activation-side buffers, largest first

  // activations + activation_grads + transition + scratch.
  int64_t activation_total() const;
  // What those add at most. glibc serves buffers below 32 MiB (its largest mmap threshold) from
  // its heap, which keeps freed memory for the next: they share one region, the largest of
  // them. Larger ones are mapped and unmapped each time: the largest adds on top.
  int64_t transient() const;
  // The most held at once: everything above, with the largest transient.
  int64_t peak() const;
};

// The runtime baseline of one of `workers` workers with `threads` compute threads (see
// MemoryEstimate); several workers add the MPI library's own memory.
int64_t runtime_bytes(int threads, int workers);

// The estimate for worker `rank` of run.workers.
MemoryEstimate estimate_memory(const NetworkSpec& spec, const MemoryRun& run, int rank);
// The worker that needs the most (shards differ by a row when the sizes do not divide).
MemoryEstimate estimate_memory_largest(const NetworkSpec& spec, const MemoryRun& run);

}  // namespace owt
