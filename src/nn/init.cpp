// Keyed parameter initialisation (docs/ARCHITECTURE.md, "Randomness"): value of full-tensor element e of param P is a
// function of (seed, hash(P.name), e) only, whatever the worker count.
#include "owt/nn/init.h"

#include <cmath>

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

void initialize_param(Param& p, uint64_t seed, Backend& backend) {
  Shape local = p.local_shape();
  std::vector<float> host(local.numel());
  // Elements are enumerated in the full tensor: local (outer, a, inner) -> full (outer, begin+a, inner).
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
          v = p.init.a + (p.init.b - p.init.a) * uniform01(r.v[0]);
        } else if (p.init.kind == InitSpec::Normal) {
          // Box-Muller on two independent 24-bit uniforms; u1 in (0, 1].
          float u1 = 1.f - uniform01(r.v[0]), u2 = uniform01(r.v[1]);
          v = p.init.a + p.init.b * std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2);
        }
        host[(o * local_axis + a) * inner + i] = v;
      }
  backend.from_host(host.data(), p.value.f32(), host.size() * sizeof(float));
}

}  // namespace owt
