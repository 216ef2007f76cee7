// Helpers for the CPU-vs-CUDA tests: the skip without a device (a failure under
// OWT_REQUIRE_GPU=1), host<->backend copies, seeded random data and a tolerance check relative
// to the reference tensor's largest magnitude.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/backend/cuda.h"

namespace owt::test {

// OWT_REQUIRE_GPU=1 (tools/gpu_check.sh sets it): a test that would skip for want of a device
// fails instead, so a run where CUDA cannot start is never reported as passed.
inline bool gpu_required() {
  const char* v = std::getenv("OWT_REQUIRE_GPU");
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace owt::test

// Skips the test (fails it under OWT_REQUIRE_GPU=1) when no CUDA device is visible, saying why.
#define OWT_SKIP_WITHOUT_GPU()                                                              \
  if (::owt::cuda_device_count() == 0) {                                                    \
    if (::owt::test::gpu_required())                                                        \
      GTEST_FAIL() << "OWT_REQUIRE_GPU is set but no CUDA device is usable: "               \
                   << ::owt::cuda_unavailable_reason();                                     \
    else                                                                                    \
      GTEST_SKIP() << "no CUDA device: " << ::owt::cuda_unavailable_reason();               \
  }

namespace owt::test {

// The tolerances: relative to the largest |reference| of each compared tensor. tf32 allows
// 3e-3: operands keep 10 mantissa bits, and if tensor cores cut rather than round them every
// product is biased low by about 2^-10, so a long sum's error reaches 1e-3 of its value.
inline double tolerance_for(const std::string& precision) {
  if (precision == "fp32-strict") return 1e-5;
  if (precision == "tf32") return 3e-3;
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

// A suite whose tests share one fp32-strict CUDA backend (cuBLAS and cuDNN start-up is slow
// under compute-sanitizer, where tools/gpu_check.sh runs the exact-op suites) and compare it with
// a CPU backend: both(0) is the GPU, both(1) the CPU. Suite is the deriving class (one backend
// per suite).
template <typename Suite>
class SharedCudaBackendTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { shared_.reset(); }
  void SetUp() override {
    OWT_SKIP_WITHOUT_GPU();
    cpu_ = make_cpu_backend();
    if (!shared_) shared_ = make_cuda_backend(0, "fp32-strict");
    gpu_ = shared_.get();
  }
  Backend* both(int i) { return i == 0 ? gpu_ : cpu_.get(); }
  std::unique_ptr<Backend> cpu_;
  Backend* gpu_ = nullptr;
  static inline std::unique_ptr<Backend> shared_;
};

}  // namespace owt::test
