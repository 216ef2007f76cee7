// owt_conv_bench: GFLOP/s of the two CPU convolution engines (im2col + OpenBLAS sgemm vs
// oneDNN) for forward, backward-data and backward-filter on the fmnist and AlexNet shapes.
// Usage: owt_conv_bench [threads (default 2)] [seconds per engine, op and shape (default 0.4)]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu_conv.h"

namespace {

using owt::ConvGeom;

constexpr int kRounds = 4;

struct Case {
  const char* name;
  ConvGeom g;
};

ConvGeom geom(int n, int c, int h, int k, int ks, int stride, int pad) {
  int o = (h + 2 * pad - ks) / stride + 1;
  return ConvGeom{n, c, h, h, k, ks, ks, stride, stride, pad, pad, o, o};
}

// Fastest single call of f among the calls made in `seconds` (at least 2). The minimum, not
// the mean: the 2 cores are shared, and a descheduled OpenMP thread stalls a whole call.
double best_call(const std::function<void()>& f, double seconds) {
  using clock = std::chrono::steady_clock;
  int calls = 0;
  double best = 1e30, total = 0;
  do {
    auto t0 = clock::now();
    f();
    double t = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::min(best, t);
    total += t;
    ++calls;
  } while (total < seconds || calls < 2);
  return best;
}

// best[op] = min(best[op], this round's fastest call) for fwd, bwd-data, bwd-filter.
template <typename Engine>
void measure(Engine& e, const ConvGeom& g, std::vector<float>& x, std::vector<float>& w,
             std::vector<float>& b, std::vector<float>& y, double seconds, double best[3]) {
  double t[3] = {
      best_call([&] { e.forward(g, x.data(), w.data(), b.data(), y.data()); }, seconds),
      best_call([&] { e.backward_data(g, y.data(), w.data(), x.data()); }, seconds),
      best_call([&] { e.backward_filter(g, x.data(), y.data(), w.data(), b.data()); }, seconds)};
  for (int op = 0; op < 3; ++op) best[op] = std::min(best[op], t[op]);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  double min_seconds = argc > 2 ? std::atof(argv[2]) : 0.4;
  omp_set_num_threads(threads);

  const std::vector<Case> cases = {
      {"fmnist conv1", geom(128, 1, 28, 32, 5, 1, 2)},
      {"fmnist conv2", geom(128, 32, 14, 64, 5, 1, 2)},
      {"alexnet conv1", geom(32, 3, 224, 64, 11, 4, 2)},
      {"alexnet conv2", geom(32, 64, 27, 192, 5, 1, 2)},
      {"alexnet conv3", geom(32, 192, 13, 384, 3, 1, 1)},
  };
  const char* ops[3] = {"fwd", "bwd-data", "bwd-filter"};

  std::printf("threads %d; GFLOP/s (fastest call, ms); flops = 2 N K OH OW C KH KW per op\n", threads);
  std::printf("%-14s %-11s %20s %20s %8s\n", "shape", "op", "im2col+sgemm", "oneDNN", "speedup");
  double sum_ms[2] = {0, 0};
  for (const Case& cs : cases) {
    const ConvGeom& g = cs.g;
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto random = [&](size_t n) {
      std::vector<float> v(n);
      for (auto& e : v) e = dist(gen) * 0.1f;
      return v;
    };
    auto x = random(size_t(g.n) * g.c * g.h * g.w), w = random(size_t(g.k) * g.c * g.kh * g.kw),
         b = random(g.k), y = random(size_t(g.n) * g.k * g.oh * g.ow);
    double gflop = 2.0 * g.n * g.k * g.oh * g.ow * g.c * g.kh * g.kw * 1e-9;
    double t[2][3] = {{1e30, 1e30, 1e30}, {1e30, 1e30, 1e30}};
    owt::Im2colConv im2col;
    owt::DnnlConv dnnl;
    // Rounds alternate the engines so that load from other processes hits both alike.
    for (int round = 0; round < kRounds; ++round) {
      measure(im2col, g, x, w, b, y, min_seconds / kRounds, t[0]);
      measure(dnnl, g, x, w, b, y, min_seconds / kRounds, t[1]);
    }
    for (int op = 0; op < 3; ++op) {
      char cell[2][32];
      for (int e = 0; e < 2; ++e) {
        std::snprintf(cell[e], sizeof cell[e], "%7.1f (%8.2f)", gflop / t[e][op], t[e][op] * 1e3);
        sum_ms[e] += t[e][op] * 1e3;
      }
      std::printf("%-14s %-11s %20s %20s %7.2fx\n", cs.name, ops[op], cell[0], cell[1],
                  t[0][op] / t[1][op]);
    }
  }
  std::printf("%-26s %11.1f ms %16.1f ms %7.2fx\n", "total (all shapes, 3 ops)", sum_ms[0],
              sum_ms[1], sum_ms[0] / sum_ms[1]);
  return 0;
}
