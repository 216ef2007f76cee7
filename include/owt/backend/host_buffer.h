// HostBuffer: host memory a backend uploads from without a staging copy (Backend::allocate_host
// and Backend::upload), and AlignedHostBuffer, the plain kind any backend can read. Header only.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <memory>

#include "owt/core/error.h"

namespace owt {

// Host memory a backend uploads from without a staging copy: page-locked under CUDA, plain
// 64-byte-aligned memory on the CPU. An upload may still read it after Backend::upload returns:
// call wait_unused() before writing it again. Shared (std::shared_ptr); the destructor waits.
class HostBuffer {
 public:
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  virtual ~HostBuffer() = default;

  void* data() const { return data_; }
  float* f32() const { return static_cast<float*>(data_); }
  size_t bytes() const { return bytes_; }
  // Bytes [offset, offset + n) of the buffer; an owt::Error when they do not lie inside it.
  const char* range(size_t offset, size_t n) const {
    OWT_CHECK(offset <= bytes_ && n <= bytes_ - offset, "upload of ", n, " bytes at ", offset,
              " from a ", bytes_, "-byte host buffer");
    return static_cast<const char*>(data_) + offset;
  }
  // Blocks until no upload queued from this buffer reads it any more.
  virtual void wait_unused() {}

 protected:
  HostBuffer(void* data, size_t bytes) : data_(data), bytes_(bytes) {}

 private:
  void* data_;
  size_t bytes_;
};

// Heap memory aligned to 64 bytes; uploads from it finish before they return.
class AlignedHostBuffer final : public HostBuffer {
 public:
  explicit AlignedHostBuffer(size_t bytes) : HostBuffer(take(bytes), bytes) {}
  ~AlignedHostBuffer() override { std::free(data()); }

 private:
  static void* take(size_t bytes) {
    constexpr size_t kAlign = 64;
    const size_t rounded = bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw Error(cat("out of host memory allocating a ", bytes, "-byte host buffer"));
    return p;
  }
};

inline std::shared_ptr<HostBuffer> allocate_aligned_host(size_t bytes) {
  return std::make_shared<AlignedHostBuffer>(bytes);
}

}  // namespace owt
