// Host buffers on the CPU backend: allocate_host gives aligned memory of the asked size, upload
// copies exactly the asked byte range (from any HostBuffer, at any offset), refuses a range past
// the buffer's end, and the buffer can be refilled and uploaded again.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "backend_test_util.h"
#include "owt/backend/backend.h"
#include "support/expect_error.h"

namespace owt {
namespace {

TEST(CpuHostBuffer, AllocateHostIsAlignedAndSized) {
  auto be = make_cpu_backend();
  for (size_t bytes : {size_t(0), size_t(4), size_t(100), size_t(4096 + 4)}) {
    auto buf = be->allocate_host(bytes);
    ASSERT_NE(buf, nullptr);
    ASSERT_NE(buf->data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf->data()) % 64, 0u);
    EXPECT_EQ(buf->bytes(), bytes);
    buf->wait_unused();  // nothing asynchronous on the CPU: returns at once
  }
}

TEST(CpuHostBuffer, UploadCopiesTheRangeAndRefillsAfterWaitUnused) {
  auto be = make_cpu_backend();
  const size_t n = 1000;
  auto host = be->allocate_host(n * sizeof(float));
  const std::vector<float> first = test::random_vec(n, 1), second = test::random_vec(n, 2);
  std::memcpy(host->data(), first.data(), n * sizeof(float));
  Tensor dev = be->empty(Shape{static_cast<int64_t>(n)});
  be->fill(dev.f32(), n, -7.f);
  // Floats [100, 600) of the buffer to the start of dev; the rest of dev untouched.
  be->upload(*host, 100 * sizeof(float), dev.f32(), 500 * sizeof(float));
  std::vector<float> back(n);
  be->to_host(dev.f32(), back.data(), n * sizeof(float));
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], i < 500 ? first[100 + i] : -7.f) << i;

  host->wait_unused();
  std::memcpy(host->data(), second.data(), n * sizeof(float));
  be->upload(*host, 0, dev.f32(), n * sizeof(float));
  be->to_host(dev.f32(), back.data(), n * sizeof(float));
  EXPECT_EQ(back, second);
}

TEST(CpuHostBuffer, UploadFromPlainHostMemoryAndOutOfRangeIsAnError) {
  auto be = make_cpu_backend();
  auto plain = allocate_aligned_host(16 * sizeof(float));  // not the backend's own
  for (int i = 0; i < 16; ++i) plain->f32()[i] = static_cast<float>(i);
  Tensor dev = be->empty(Shape{16});
  be->upload(*plain, 0, dev.f32(), 16 * sizeof(float));
  std::vector<float> back(16);
  be->to_host(dev.f32(), back.data(), 16 * sizeof(float));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(back[i], static_cast<float>(i));
  test::expect_error([&] { be->upload(*plain, 8, dev.f32(), 16 * sizeof(float)); },
                     {"upload of 64 bytes at 8 from a 64-byte host buffer"});
  test::expect_error([&] { be->upload(*plain, 65, dev.f32(), 0); }, {"at 65"});
}

}  // namespace
}  // namespace owt
