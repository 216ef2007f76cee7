// Philox-4x32-10 counter-based RNG (Salmon et al. 2011), the only source of randomness in owt.
// Every draw is keyed by (seed, purpose) and indexed by global coordinates (docs/ARCHITECTURE.md, "Randomness").
#pragma once
#include <cstdint>

#include "owt/core/host_device.h"

namespace owt {

// What a random number is for; part of the key so that streams never collide.
enum class Purpose : uint32_t {
  Init = 1, Dropout = 2, Shuffle = 3, Augment = 4, Test = 5,
  Synthetic = 6,  // data.format: synthetic (data/synthetic_dataset.h)
};

struct Philox4 {
  uint32_t v[4];
};

OWT_HOST_DEVICE uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Ten rounds of Philox-4x32 on counter `c` with key (k0, k1).
OWT_HOST_DEVICE Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                   uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// A key: 64-bit seed mixed with the purpose.
struct RngKey {
  uint32_t k0, k1;
};
OWT_HOST_DEVICE RngKey rng_key(uint64_t seed, Purpose purpose) {
  return RngKey{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32) ^
                                                 (static_cast<uint32_t>(purpose) * 0x85EBCA6Bu)};
}

// Uniform in [0, 1) from 32 random bits (24-bit mantissa, never 1.0).
OWT_HOST_DEVICE float uniform01(uint32_t bits) { return (bits >> 8) * (1.0f / 16777216.0f); }

// One uniform draw at global coordinates (a, b, c, d).
OWT_HOST_DEVICE float philox_uniform(RngKey key, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return uniform01(philox4x32(a, b, c, d, key.k0, key.k1).v[0]);
}

// 64-bit FNV-1a, used to turn a parameter or layer name into a counter word.
inline uint32_t name_hash(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace owt
