// Keyed initialisation (nn/init.cpp) drawn in parallel and in chunks equals the single-threaded
// element-by-element draw it replaced: golden values recorded from that code, and the old loop
// itself as a reference, for every InitSpec kind, both shard axes and any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/core/philox.h"
#include "owt/nn/init.h"

namespace owt {
namespace {

// The single-threaded loop initialize_param had before it was parallelised, verbatim but for
// the final multiply-add: the FMA builds (-march=native) fused it, a build without FMA or with
// the sanitizers' -O1 may not, so it is written as the std::fma those builds computed (and
// initialize_param now computes in every build).
std::vector<float> reference_init(const Param& p, uint64_t seed) {
  Shape local = p.local_shape();
  std::vector<float> host(local.numel());
  int axis = p.sharded() ? p.placement.dim : 0;
  int64_t inner = 1, outer = 1;
  for (int d = axis + 1; d < local.rank(); ++d) inner *= local[d];
  for (int d = 0; d < axis; ++d) outer *= local[d];
  int64_t local_axis = local.rank() ? local[axis] : 1, full_axis = p.full_shape.rank() ? p.full_shape[axis] : 1;
  int64_t offset = p.sharded() ? p.placement.begin : 0;
  RngKey key = rng_key(seed, Purpose::Init);
  uint32_t name_word = name_hash(p.name.c_str());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t a = 0; a < local_axis; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t full = (o * full_axis + offset + a) * inner + i;
        Philox4 r = philox4x32(name_word, static_cast<uint32_t>(full),
                               static_cast<uint32_t>(full >> 32), 0, key.k0, key.k1);
        float v = p.init.a;
        if (p.init.kind == InitSpec::Uniform) {
          v = std::fma(p.init.b - p.init.a, uniform01(r.v[0]), p.init.a);
        } else if (p.init.kind == InitSpec::Normal) {
          float u1 = 1.f - uniform01(r.v[0]), u2 = uniform01(r.v[1]);
          v = std::fma(p.init.b * std::sqrt(-2.f * std::log(u1)), std::cos(6.2831853f * u2), p.init.a);
        }
        host[(o * local_axis + a) * inner + i] = v;
      }
  return host;
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

uint64_t fnv(const std::vector<float>& v) {
  uint64_t h = 1469598103934665603ull;
  for (float f : v)
    for (int i = 0; i < 4; ++i) h = (h ^ ((bits(f) >> (8 * i)) & 0xff)) * 1099511628211ull;
  return h;
}

std::vector<float> initialized(Param p, uint64_t seed, Backend& be) {
  p.value = be.empty(p.local_shape());
  initialize_param(p, seed, be);
  std::vector<float> v(p.value.numel());
  be.to_host(p.value.f32(), v.data(), v.size() * sizeof(float));
  return v;
}

struct Golden {
  const char* label;
  Param param;
  uint64_t seed;
  uint64_t hash;                                       // FNV-1a of the bytes
  std::vector<std::pair<int64_t, uint32_t>> elements;  // index -> float bits
};

// Recorded from the single-threaded code (commit d9afe38), Release build on x86-64 with FMA.
std::vector<Golden> goldens() {
  const InitSpec u{InitSpec::Uniform, -0.5f, 0.5f};
  return {
      {"uniform (7, 5) Shard(0) rank 1 of 3", make_sharded_param("fc.weight", Shape{7, 5}, 0, 1, 3, u), 42,
       0x84815b1ac6eae405ull, {{0, 0x3e90c2c6}, {4, 0xbec4d086}, {9, 0x3d86ad18}}},
      {"uniform (7, 5) Shard(1) rank 2 of 3", make_sharded_param("fc.weight", Shape{7, 5}, 1, 2, 3, u), 42,
       0xc43521f6dbb22eacull, {{0, 0x3e1e8a20}, {1, 0xbe9fa554}, {13, 0x3e024ba0}}},
      {"he conv (4, 3, 3, 3) replicated",
       make_replicated_param("conv1.weight", Shape{4, 3, 3, 3}, weight_init("he", 27)), 7,
       0xdb2e54708b97fe59ull, {{0, 0xbeee1b9f}, {50, 0xbda8522f}, {107, 0xbf228cca}}},
      {"constant bias", make_replicated_param("fc.bias", Shape{9}, InitSpec{InitSpec::Constant, 0.25f, 0.f}),
       7, 0xc810070b48c0d48dull, {{0, 0x3e800000}, {8, 0x3e800000}}},
      {"default (1000, 96) Shard(1) rank 1 of 4",
       make_sharded_param("head.weight", Shape{1000, 96}, 1, 1, 4, weight_init("default", 96)), 123,
       0xba86db0e6158065dull, {{0, 0xbd2c2cce}, {23, 0x3d3f876f}, {24, 0x3d35bb63}, {23999, 0xbd55c35f}}},
      {"he (1001, 96) Shard(0) rank 3 of 4",
       make_sharded_param("head.weight", Shape{1001, 96}, 0, 3, 4, weight_init("he", 96)), 123,
       0xaf9dc3ecee22b454ull, {{0, 0x3e35cf78}, {95, 0x3e588551}, {24095, 0x3dc63a0d}}},
  };
}

class ThreadCount : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(GetParam());
  }
  void TearDown() override { omp_set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_P(ThreadCount, InitEqualsTheGoldenValuesOfTheSingleThreadedCode) {
  auto be = make_cpu_backend();
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.label);
    const std::vector<float> v = initialized(g.param, g.seed, *be);
    EXPECT_EQ(fnv(v), g.hash);
    for (auto [i, b] : g.elements) EXPECT_EQ(bits(v.at(i)), b) << "element " << i;
    EXPECT_EQ(v, reference_init(g.param, g.seed));
  }
}

TEST_P(ThreadCount, InitEqualsTheOldLoopAcrossChunksShardsAndTheLowWordWrap) {
  auto be = make_cpu_backend();
  std::vector<Param> params;
  // Several 64 MiB staging chunks (2^24 elements each) and pieces: (4100, 4099) = 16.8M elements.
  params.push_back(make_sharded_param("big.weight", Shape{8200, 4099}, 0, 1, 2, weight_init("default", 4099)));
  for (int workers : {1, 3})
    for (int rank = 0; rank < workers; ++rank)
      for (int axis : {0, 1}) {
        params.push_back(make_sharded_param("a.weight", Shape{33, 17, 5}, axis, rank, workers,
                                            weight_init("he", 85)));
        params.push_back(make_sharded_param("b.weight", Shape{300, 71}, axis, rank, workers,
                                            weight_init("default", 71)));
      }
  // A shard whose full element indices cross 2^32 (rows of 64: 2^32 = row 67108864).
  Param wrap = make_replicated_param("wrap.weight", Shape{67108870, 64}, weight_init("he", 64));
  wrap.placement = Placement::shard(0, 67108860, 67108868, 67108870);
  params.push_back(wrap);
  wrap.init = weight_init("default", 64);
  params.push_back(wrap);
  for (const Param& p : params) {
    SCOPED_TRACE(p.name + " " + p.placement.str());
    EXPECT_TRUE(initialized(p, 99, *be) == reference_init(p, 99));
  }
}

INSTANTIATE_TEST_SUITE_P(Init, ThreadCount, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace owt
