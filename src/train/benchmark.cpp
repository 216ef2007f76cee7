// run_benchmark: the same network, params, step and optimizer as training, fed a fixed random
// batch; the timed loop is step + optimizer update, synchronised, averaged over iterations.
#include "owt/train/benchmark.h"

#include <algorithm>
#include <chrono>

#include "owt/backend/cuda.h"
#include "owt/core/philox.h"
#include "owt/train/evaluate.h"
#include "owt/train/model.h"

namespace owt {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

BenchResult run_benchmark(const ModelConfig& cfg, const BenchOptions& opt, Backend& backend,
                          Communicator& comm) {
  const int K = comm.size();
  const int64_t b = opt.batch > 0 ? opt.batch : cfg.solver.batch, B = b * K;
  Model model(cfg, backend, comm, opt.mode);
  Network& net = model.network();

  // A fixed random batch: pixels N(0,1)-ish uniform, labels uniform over the classes.
  RngKey key = rng_key(cfg.seed, Purpose::Test);
  std::vector<float> x_host(b * cfg.net.input.numel());
  for (size_t i = 0; i < x_host.size(); ++i)
    x_host[i] = 2.f * philox_uniform(key, 0, static_cast<uint32_t>(i), 0, 0) - 1.f;
  std::vector<int32_t> labels(B);
  for (int64_t i = 0; i < B; ++i)
    labels[i] = static_cast<int32_t>(philox_uniform(key, 1, static_cast<uint32_t>(i), 0, 0) * cfg.net.classes);
  Tensor x = backend.empty(cfg.net.input.with_batch(b));
  Tensor y = backend.empty(Shape{B}, DType::I32);
  backend.from_host(x_host.data(), x.f32(), x_host.size() * sizeof(float));
  backend.from_host(labels.data(), y.i32(), B * sizeof(int32_t));
  BatchRows rows = split_rows(B, comm.rank(), K);

  auto step = [&](int64_t s) { model.train_step(x, y, labels.data(), rows, s, cfg.solver.lr); };
  for (int64_t s = 0; s < opt.warmup; ++s) step(s);
  comm.barrier();
  comm.reset_counters();
  model.stepper().enable_profiling(opt.profile);
  const bool on_gpu = backend.device() == Device::CUDA;
  if (on_gpu) cuda_reset_peak_memory(backend);
  using Clock = std::chrono::steady_clock;
  std::vector<double> step_seconds;
  const auto t0 = Clock::now();
  for (int64_t s = 0; s < opt.iters; ++s) {
    const auto ts = Clock::now();
    step(opt.warmup + s);
    step_seconds.push_back(std::chrono::duration<double>(Clock::now() - ts).count());
  }
  comm.barrier();
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  BenchResult r;
  r.workers = K;
  r.batch = b;
  r.iters = opt.iters;
  r.seconds_per_step = seconds / opt.iters;
  r.median_seconds_per_step = median(step_seconds);
  r.images_per_s = B / r.seconds_per_step;
  double flops = 0;
  for (size_t i = 0; i < net.size(); ++i)
    flops += net.layer(i).forward_flops() * (net.has_model_parallel_stage() && i >= net.transition() ? B : b);
  r.forward_gflop_per_step = flops * 1e-9;
  if (on_gpu) r.peak_gpu_bytes = cuda_memory_stats(backend).peak_in_use;
  r.gflops_per_worker = 3 * flops * 1e-9 / r.seconds_per_step;
  for (int op = 0; op < static_cast<int>(CommOp::Count); ++op) {
    uint64_t e = comm.elements_sent(static_cast<CommOp>(op));
    if (e) r.bytes_per_step[comm_op_name(static_cast<CommOp>(op))] = e * sizeof(float) / opt.iters;
  }
  if (opt.profile) {
    const LayerTimes& times = model.stepper().layer_times();
    for (size_t i = 0; i < net.size(); ++i)
      r.layers.push_back({net.layer(i).name(), net.layer(i).type(), 1e3 * median(times.forward[i]),
                          1e3 * median(times.backward[i])});
  }
  return r;
}

}  // namespace owt
