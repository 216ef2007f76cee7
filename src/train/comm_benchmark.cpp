// run_comm_benchmark: each collective at sizes growing geometrically, repeated (more often for
// small messages), every repetition started together after a barrier; the slowest rank's median.
#include "owt/train/comm_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "owt/train/benchmark.h"

namespace owt {
namespace {

// Repetitions per size: enough to see past noise at 4 KiB, few at 256 MiB.
int repetitions(size_t bytes) {
  return static_cast<int>(std::clamp<size_t>((size_t{64} << 20) / std::max<size_t>(bytes, 1), 3, 50));
}

// One call of `op` with `n` floats per rank (comm_fit.h: what "per rank" means per op).
void call(Communicator& comm, CommOp op, float* a, float* b, size_t n) {
  const std::vector<size_t> blocks(comm.size(), n);
  switch (op) {
    case CommOp::AllReduce: return comm.all_reduce(a, n);
    case CommOp::AllGather: return comm.all_gather(a, b, blocks);
    case CommOp::ReduceScatter: return comm.reduce_scatter(b, a, blocks);
    case CommOp::Broadcast: return comm.broadcast(a, n, 0);
    case CommOp::Reduce: return comm.reduce(a, n, 0);
    default: OWT_CHECK(false, "not a timed collective");
  }
}

// The slowest rank's value of `mine` (every rank gets it): a collective ends when its slowest
// rank does. Passed through the backend's memory, where the communicator reads.
double slowest(Communicator& comm, Backend& backend, double mine) {
  const int K = comm.size();
  const float f = static_cast<float>(mine);
  std::vector<float> all(K);
  Tensor one = backend.empty(Shape{1}), every = backend.empty(Shape{K});
  backend.from_host(&f, one.f32(), sizeof(float));
  comm.all_gather(one.f32(), every.f32(), std::vector<size_t>(K, 1));
  backend.to_host(every.f32(), all.data(), K * sizeof(float));
  return *std::max_element(all.begin(), all.end());
}

// Median seconds of `body` over `reps` runs, every rank starting together; the slowest rank's.
template <typename F>
double timed_median(Communicator& comm, Backend& backend, int reps, F&& body) {
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    body();
    backend.synchronize();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return slowest(comm, backend, median(times));
}

// CommCalibration::overlap: an all-reduce of `n` floats alone (c), gemms alone (w, as many
// 512^3 products as last about c), and the all-reduce launched before the gemms with test()
// between them and wait() after (both); overlap = (c + w - both) / min(c, w), within [0, 1].
double measure_overlap(Communicator& comm, Backend& backend, float* buf, size_t n) {
  const int m = 512;
  Tensor a = backend.empty(Shape{m * m}), c = backend.empty(Shape{m * m});
  backend.fill(a.f32(), a.numel(), 0.5f);
  auto gemm = [&] { backend.gemm(Trans::N, Trans::N, m, m, m, 1.f, a.f32(), m, a.f32(), m, 0.f, c.f32(), m); };
  const double one_gemm = timed_median(comm, backend, 5, gemm);
  const double t_comm = timed_median(comm, backend, 5, [&] { comm.all_reduce(buf, n); });
  const int gemms = std::max(1, static_cast<int>(std::lround(t_comm / std::max(one_gemm, 1e-9))));
  auto work = [&](CommHandle* h) {
    for (int i = 0; i < gemms; ++i) {
      gemm();
      if (h) h->test();
    }
  };
  const double t_work = timed_median(comm, backend, 5, [&] { work(nullptr); });
  const double t_both = timed_median(comm, backend, 5, [&] {
    std::unique_ptr<CommHandle> h = comm.all_reduce_async(buf, n);
    work(h.get());
    h->wait();
  });
  return std::clamp((t_comm + t_work - t_both) / std::min(t_comm, t_work), 0.0, 1.0);
}

}  // namespace

CommCalibration run_comm_benchmark(Communicator& comm, Backend& backend, const CommBenchOptions& opt) {
  const int K = comm.size();
  const size_t max_n = opt.max_bytes / sizeof(float);
  Tensor a = backend.empty(Shape{static_cast<int64_t>(max_n)});
  Tensor b = backend.empty(Shape{static_cast<int64_t>(max_n) * K});
  backend.fill(a.f32(), a.numel(), 0.f);
  backend.fill(b.f32(), b.numel(), 0.f);
  backend.synchronize();
  CommCalibration out;
  out.communicator = comm.name();
  out.workers = K;
  for (CommOp op : {CommOp::AllReduce, CommOp::AllGather, CommOp::ReduceScatter, CommOp::Broadcast,
                    CommOp::Reduce}) {
    CommOpTimings t;
    t.op = op;
    for (size_t bytes = opt.min_bytes; bytes <= opt.max_bytes; bytes *= std::max(2, opt.size_step)) {
      const size_t n = bytes / sizeof(float);
      call(comm, op, a.f32(), b.f32(), n);  // warm-up: connections, registration, algorithms
      backend.synchronize();
      const double seconds = timed_median(comm, backend, repetitions(bytes),
                                          [&] { call(comm, op, a.f32(), b.f32(), n); });
      t.points.push_back({static_cast<double>(bytes), seconds});
    }
    t.fit = fit_latency_bandwidth(t.points);
    out.ops.push_back(t);
  }
  out.overlap = measure_overlap(comm, backend, a.f32(), std::min<size_t>(max_n, size_t{4} << 20));
  return out;
}

}  // namespace owt
