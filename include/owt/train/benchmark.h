// Benchmark: times training steps of a model on synthetic data (no data loading), so the
// number is the trainer's own throughput; reports images/s, GFLOP/s and bytes moved per step.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/parallel/plan.h"
#include "owt/train/model_config.h"

namespace owt {

struct BenchOptions {
  int64_t batch = 0;   // per worker; 0: solver.batch
  int64_t iters = 20;  // timed steps
  int64_t warmup = 3;  // untimed steps first
  ParallelMode mode = ParallelMode::Owt;
  bool profile = false;  // also time each layer
};

// One layer's time per step, the median over the timed steps (the loss's forward includes
// its hit counts).
struct LayerProfile {
  std::string name, type;
  double forward_ms = 0, backward_ms = 0;
};

struct BenchResult {
  int workers = 1;
  int64_t batch = 0, iters = 0;
  double seconds_per_step = 0;         // mean over the timed steps
  double median_seconds_per_step = 0;  // median of the timed steps
  double images_per_s = 0;        // global batch / step time
  double gflops_per_worker = 0;   // achieved, forward + backward (3x forward) per worker
  double forward_gflop_per_step = 0;
  uint64_t peak_gpu_bytes = 0;    // CUDA: peak device memory held by the allocator while timed
  std::map<std::string, uint64_t> bytes_per_step;  // per op kind, this worker
  std::vector<LayerProfile> layers;                // with BenchOptions::profile
};

// The median of v (0 when empty).
double median(std::vector<double> v);

BenchResult run_benchmark(const ModelConfig& cfg, const BenchOptions& opt, Backend& backend,
                          Communicator& comm);

}  // namespace owt
