// DeviceAllocator (caching cudaMalloc, peak tracking), PinnedStaging (cudaHostAlloc ring) and
// PinnedHostBuffer (allocate_host); see cuda_allocator.h. Destructors never throw: they may
// run after the CUDA context is gone at process exit, where every call is allowed to fail.
#include "cuda_allocator.h"

#include <algorithm>

#include "cuda_check.h"

namespace owt {

size_t DeviceAllocator::rounded(size_t bytes) {
  constexpr size_t kSmallStep = 512, kSmallMax = 1u << 20;
  if (bytes == 0) return kSmallStep;
  if (bytes < kSmallMax) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  size_t octave = kSmallMax;  // the largest power of two <= bytes
  while (octave <= bytes / 2) octave *= 2;
  const size_t step = octave / 8;
  return (bytes + step - 1) / step * step;
}

DeviceGuard::DeviceGuard(int device) {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current == device) return;
  cudaGetLastError();
  if (cudaSetDevice(device) == cudaSuccess) previous_ = current;
  cudaGetLastError();  // a failure shows up at the call this guards
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

DeviceAllocator::~DeviceAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  DeviceGuard on(device_);
  free_cached_locked();
  cudaGetLastError();  // leave no sticky error behind
}

void DeviceAllocator::set_release_hook(std::function<void(void*, size_t)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  release_hook_ = std::move(hook);
}

std::shared_ptr<Buffer> DeviceAllocator::allocate(size_t bytes) {
  size_t size = rounded(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(size);  // the smallest free block that fits
    if (it != free_.end() && it->first <= reuse_limit(size)) {
      size = it->first;
      p = it->second;
      free_.erase(it);
    } else {
      DeviceGuard on(device_);
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
  std::function<void(void*, size_t)> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = release_hook_;
  }
  if (hook) hook(p, size);  // before the block can be handed out again
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(size, p);
  stats_.in_use -= size;
}

void DeviceAllocator::empty_cache() {
  DeviceGuard on(device_);
  OWT_CUDA_CHECK(cudaDeviceSynchronize());
  std::lock_guard<std::mutex> lock(mu_);
  free_cached_locked();
}

void DeviceAllocator::free_cached_locked() {
  for (auto& [size, p] : free_) {
    cudaFree(p);  // failures only at exit, after the context is gone
    stats_.reserved -= size;
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

// ---- pinned host buffers (allocate_host) ----------------------------------------------------

std::shared_ptr<PinnedHostBuffer> PinnedHostBuffer::make(int device, size_t bytes) {
  DeviceGuard on(device);
  void* p = nullptr;
  const cudaError_t rc = cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocPortable);
  if (rc != cudaSuccess) {
    cudaGetLastError();
    throw Error(cat("CUDA error in cudaHostAlloc(", bytes, " bytes) for device ", device, ": ",
                    cudaGetErrorString(rc), " (page-locked host memory for input batches)"));
  }
  cudaEvent_t done = nullptr;
  const cudaError_t ev = cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
  if (ev != cudaSuccess) {
    cudaFreeHost(p);
    cudaGetLastError();
    throw Error(cat("CUDA error in cudaEventCreateWithFlags on device ", device, ": ",
                    cudaGetErrorString(ev)));
  }
  return std::shared_ptr<PinnedHostBuffer>(new PinnedHostBuffer(p, bytes, device, done));
}

PinnedHostBuffer::~PinnedHostBuffer() {
  DeviceGuard on(device_);  // the last owner may be any thread
  if (pending_) cudaEventSynchronize(done_);
  cudaEventDestroy(done_);
  cudaFreeHost(data());
  cudaGetLastError();
}

void PinnedHostBuffer::used(cudaStream_t stream) {
  OWT_CUDA_CHECK(cudaEventRecord(done_, stream));
  pending_ = true;
}

void PinnedHostBuffer::wait_unused() {
  if (!pending_) return;
  OWT_CUDA_CHECK(cudaEventSynchronize(done_));
  pending_ = false;
}

}  // namespace owt
