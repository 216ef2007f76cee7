// Helpers for the CPU-vs-CUDA tests: the skip without a device, host<->backend copies, seeded
// random data and a tolerance check relative to the reference tensor's largest magnitude.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/backend/cuda.h"

#define OWT_SKIP_WITHOUT_GPU() \
  if (::owt::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

namespace owt::test {

// The tolerances of the issue: relative to the largest |reference| of each compared tensor.
inline double tolerance_for(const std::string& precision) {
  if (precision == "fp32-strict") return 1e-5;
  if (precision == "tf32") return 1e-3;
  return 1e-2;  // bf16
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline Tensor upload(Backend& b, const std::vector<float>& host) {
  Tensor t = b.empty(Shape{static_cast<int64_t>(std::max<size_t>(host.size(), 1))});
  b.from_host(host.data(), t.f32(), host.size() * sizeof(float));
  return t;
}
inline Tensor upload_i32(Backend& b, const std::vector<int32_t>& host) {
  Tensor t = b.empty(Shape{static_cast<int64_t>(std::max<size_t>(host.size(), 1))}, DType::I32);
  b.from_host(host.data(), t.i32(), host.size() * sizeof(int32_t));
  return t;
}
inline std::vector<float> download(Backend& b, const Tensor& t, size_t n) {
  std::vector<float> host(n);
  b.to_host(t.f32(), host.data(), n * sizeof(float));
  return host;
}
inline std::vector<int32_t> download_i32(Backend& b, const Tensor& t, size_t n) {
  std::vector<int32_t> host(n);
  b.to_host(t.i32(), host.data(), n * sizeof(int32_t));
  return host;
}

// max |got - want| <= rtol * max |want| (and no NaN where the reference has none).
inline ::testing::AssertionResult near_rel(const std::vector<float>& got,
                                           const std::vector<float>& want, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  double scale = 0, worst = 0;
  size_t at = 0;
  for (float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(got[i]) != std::isnan(want[i])) d = INFINITY;
    if (d > worst) worst = d, at = i;
  }
  double bound = rtol * std::max(scale, 1e-30);
  if (worst <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |cuda - cpu| = " << worst << " at [" << at << "] (cuda " << got[at] << ", cpu "
         << want[at] << ") exceeds " << rtol << " x max|cpu| = " << bound;
}

}  // namespace owt::test
