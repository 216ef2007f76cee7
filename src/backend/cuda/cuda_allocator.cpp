// DeviceAllocator (caching cudaMalloc, peak tracking) and PinnedStaging (cudaHostAlloc ring);
// see cuda_allocator.h. Destructors never throw: they may run after the CUDA context is gone
// at process exit, where every call is allowed to fail.
#include "cuda_allocator.h"

#include <algorithm>

#include "cuda_check.h"

namespace owt {

size_t DeviceAllocator::rounded(size_t bytes) {
  constexpr size_t kSmallStep = 512, kLargeStep = 2u << 20, kSmallMax = 1u << 20;
  if (bytes == 0) return kSmallStep;
  if (bytes < kSmallMax) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

DeviceAllocator::~DeviceAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cudaSetDevice(device_) == cudaSuccess) free_cached_locked();
  cudaGetLastError();  // leave no sticky error behind
}

std::shared_ptr<Buffer> DeviceAllocator::allocate(size_t bytes) {
  const size_t size = rounded(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    } else {
      cudaError_t rc = cudaMalloc(&p, size);
      if (rc == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // clear it, hand the cache back to the driver, try once more
        OWT_CUDA_CHECK(cudaDeviceSynchronize());
        free_cached_locked();
        rc = cudaMalloc(&p, size);
      }
      if (rc != cudaSuccess) {
        cudaGetLastError();
        throw Error(cat("CUDA error in cudaMalloc(", size, " bytes) on device ", device_,
                        " at ", __FILE__, ":", __LINE__, ": ", cudaGetErrorString(rc), " (",
                        stats_.in_use, " bytes in use, ", stats_.reserved, " reserved)"));
      }
      stats_.reserved += size;
      stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
    }
    stats_.in_use += size;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  }
  auto buf = std::make_shared<Buffer>();
  buf->ptr = p;
  buf->bytes = bytes;
  buf->device = Device::CUDA;
  std::shared_ptr<DeviceAllocator> self = shared_from_this();
  buf->deleter = [self, size](void* q) { self->release(q, size); };
  return buf;
}

void DeviceAllocator::release(void* p, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  free_[size].push_back(p);
  stats_.in_use -= size;
}

void DeviceAllocator::empty_cache() {
  OWT_CUDA_CHECK(cudaSetDevice(device_));
  OWT_CUDA_CHECK(cudaDeviceSynchronize());
  std::lock_guard<std::mutex> lock(mu_);
  free_cached_locked();
}

void DeviceAllocator::free_cached_locked() {
  for (auto& kv : free_) {
    for (void* p : kv.second) {
      cudaFree(p);  // failures only at exit, after the context is gone
      stats_.reserved -= kv.first;
    }
    kv.second.clear();
  }
  free_.clear();
}

CudaMemoryStats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void DeviceAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_in_use = stats_.in_use;
  stats_.peak_reserved = stats_.reserved;
}

// ---- pinned staging ------------------------------------------------------------------------

PinnedStaging::~PinnedStaging() {
  for (Slot& s : slots_) {
    if (s.done) {
      cudaEventSynchronize(s.done);
      cudaEventDestroy(s.done);
    }
    if (s.ptr) cudaFreeHost(s.ptr);
  }
  cudaGetLastError();
}

void* PinnedStaging::acquire(size_t bytes) {
  Slot& s = slots_[next_];
  current_ = next_;
  next_ = (next_ + 1) % 2;
  if (!s.done) OWT_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
  if (s.pending) {
    OWT_CUDA_CHECK(cudaEventSynchronize(s.done));
    s.pending = false;
  }
  if (s.bytes < bytes) {
    if (s.ptr) OWT_CUDA_CHECK(cudaFreeHost(s.ptr));
    s.ptr = nullptr;
    s.bytes = 0;
    size_t grow = std::max(bytes, size_t{1} << 20);
    OWT_CUDA_CHECK(cudaHostAlloc(&s.ptr, grow, cudaHostAllocDefault));
    s.bytes = grow;
  }
  return s.ptr;
}

void PinnedStaging::used(cudaStream_t stream) {
  OWT_CHECK(current_ >= 0, "PinnedStaging::used without acquire");
  Slot& s = slots_[current_];
  OWT_CUDA_CHECK(cudaEventRecord(s.done, stream));
  s.pending = true;
}

}  // namespace owt
