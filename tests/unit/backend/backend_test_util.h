// Helpers shared by the CPU backend tests: seeded random fills and tolerant comparisons of a
// float result against a double reference.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace owt::test {

inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// x rounded to bfloat16 (8 significant bits, round to nearest even), as a float. Finite x only.
inline float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &u, sizeof u);
  return x;
}
inline std::vector<float> rounded_bf16(std::vector<float> v) {
  for (auto& x : v) x = round_bf16(x);
  return v;
}

// |got - want| <= atol + rtol * |want| for every element; reports the first few failures.
template <typename Want>
::testing::AssertionResult all_near(const std::vector<float>& got, const std::vector<Want>& want,
                                    double atol, double rtol = 0.0) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  int bad = 0;
  auto failure = ::testing::AssertionFailure();
  for (size_t i = 0; i < got.size(); ++i) {
    double w = static_cast<double>(want[i]);
    double d = std::fabs(static_cast<double>(got[i]) - w);
    if (!(d <= atol + rtol * std::fabs(w))) {
      if (bad < 5) failure << "\n  [" << i << "] got " << got[i] << " want " << w;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return failure << "\n  " << bad << " of " << got.size() << " elements differ";
}

}  // namespace owt::test
