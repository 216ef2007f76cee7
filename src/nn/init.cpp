// Keyed parameter initialisation (docs/ARCHITECTURE.md, "Randomness"): value of full-tensor element e of param P is a
// function of (seed, hash(P.name), e) only, whatever the worker count (or thread count: drawn in parallel).
#include "owt/nn/init.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "owt/core/philox.h"
#include "owt/core/shard.h"

namespace owt {

const std::vector<std::string>& init_choices() {
  static const std::vector<std::string> c = {"default", "he"};
  return c;
}

InitSpec weight_init(const std::string& choice, int64_t fan_in) {
  float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  if (choice == "he") return InitSpec{InitSpec::Normal, 0.f, std::sqrt(2.f / fan_in)};
  return InitSpec{InitSpec::Uniform, -bound, bound};
}

InitSpec bias_init(const std::string& choice, int64_t fan_in) {
  float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  if (choice == "he") return InitSpec{InitSpec::Constant, 0.f, 0.f};
  return InitSpec{InitSpec::Uniform, -bound, bound};
}

Param make_replicated_param(std::string name, Shape shape, InitSpec init) {
  Param p;
  p.name = std::move(name);
  p.full_shape = shape;
  p.placement = Placement::replicate();
  p.grad_placement = Placement::partial();  // the data-parallel stage's; the network may change it
  p.init = init;
  return p;
}

Param make_sharded_param(std::string name, Shape full_shape, int axis, int rank, int workers,
                         InitSpec init) {
  Param p = make_replicated_param(std::move(name), full_shape, init);
  p.placement = Placement::shard(axis, static_cast<int64_t>(shard_begin(full_shape[axis], rank, workers)),
                                 static_cast<int64_t>(shard_end(full_shape[axis], rank, workers)),
                                 full_shape[axis]);
  p.grad_placement = p.placement;
  return p;
}

namespace {

// Host staging for from_host: at most this many elements (64 MiB) at once, never a second
// copy of a whole shard. A chunk is drawn by OpenMP threads in pieces of kPiece elements.
constexpr int64_t kInitChunk = int64_t{1} << 24;
constexpr int64_t kPiece = int64_t{1} << 14;

// dst[k] = value of full-tensor element full + k, for k < n, where the high word of the
// index is the same for all n (the loops then vectorise: Philox on 8 counters at once).
void draw_run(const InitSpec& init, uint32_t name_word, RngKey key, int64_t full, int64_t n,
              float* dst) {
  const uint32_t lo = static_cast<uint32_t>(full), hi = static_cast<uint32_t>(full >> 32);
  if (init.kind == InitSpec::Constant) {
    std::fill_n(dst, n, init.a);
  } else if (init.kind == InitSpec::Uniform) {
    // a + (b - a) * u with one rounding, as the FMA builds always computed it: written as
    // std::fma so that no build (another -march, the sanitizers' -O1) draws other values.
    const float a = init.a, scale = init.b - init.a;
    for (int64_t k = 0; k < n; ++k) {
      Philox4 r = philox4x32(name_word, lo + static_cast<uint32_t>(k), hi, 0, key.k0, key.k1);
      dst[k] = std::fma(scale, uniform01(r.v[0]), a);
    }
  } else {
    // Box-Muller on two independent 24-bit uniforms; u1 in (0, 1]. The draws vectorise, the
    // log and cos stay libm's scalar calls (a vector libm would change the values).
    constexpr int64_t kBlock = 256;
    float u1[kBlock], u2[kBlock];
    for (int64_t k0 = 0; k0 < n; k0 += kBlock) {
      const int64_t m = std::min(kBlock, n - k0);
      for (int64_t k = 0; k < m; ++k) {
        Philox4 r = philox4x32(name_word, lo + static_cast<uint32_t>(k0 + k), hi, 0, key.k0, key.k1);
        u1[k] = 1.f - uniform01(r.v[0]);
        u2[k] = uniform01(r.v[1]);
      }
      for (int64_t k = 0; k < m; ++k)
        dst[k0 + k] = std::fma(init.b * std::sqrt(-2.f * std::log(u1[k])),
                               std::cos(6.2831853f * u2[k]), init.a);
    }
  }
}

// The same for any run: split where the low word of the index wraps.
void draw_elements(const InitSpec& init, uint32_t name_word, RngKey key, int64_t full, int64_t n,
                   float* dst) {
  while (n > 0) {
    const int64_t to_wrap = (int64_t{1} << 32) - static_cast<int64_t>(static_cast<uint32_t>(full));
    const int64_t m = std::min(n, to_wrap);
    draw_run(init, name_word, key, full, m, dst);
    full += m, dst += m, n -= m;
  }
}

}  // namespace

void initialize_param(Param& p, uint64_t seed, Backend& backend) {
  // Elements are enumerated in the full tensor: local (outer, a, inner) -> full (outer, begin+a, inner),
  // so local row o, i.e. (a, inner) flattened, is one run of full indices from (o * full + begin) * inner.
  const ShardView v = p.shard_view();
  const int64_t total = v.outer * v.n * v.inner, run = v.n * v.inner;
  if (total == 0) return;
  const RngKey key = rng_key(seed, Purpose::Init);
  const uint32_t name_word = name_hash(p.name.c_str());
  const InitSpec init = p.init;
  // Chunks of local elements, each split into pieces over the OpenMP threads; every element is
  // drawn independently, so the values do not depend on the thread count.
  std::vector<float> host(static_cast<size_t>(std::min(total, kInitChunk)));
  for (int64_t c0 = 0; c0 < total; c0 += kInitChunk) {
    const int64_t c1 = std::min(total, c0 + kInitChunk);
    const int64_t pieces = (c1 - c0 + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t piece = 0; piece < pieces; ++piece) {
      const int64_t p1 = std::min(c1, c0 + (piece + 1) * kPiece);
      for (int64_t l = c0 + piece * kPiece; l < p1;) {
        const int64_t o = l / run, j = l % run, end = std::min(p1, (o + 1) * run);
        draw_elements(init, name_word, key, (o * v.full + v.begin) * v.inner + j, end - l,
                      host.data() + (l - c0));
        l = end;
      }
    }
    backend.from_host(host.data(), p.value.f32() + c0, (c1 - c0) * sizeof(float));
  }
}

}  // namespace owt
