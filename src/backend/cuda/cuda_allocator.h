// Memory for the CUDA backend: DeviceAllocator, a caching allocator over size classes
// (cudaMalloc only on a miss; a request may take a free block up to twice its class; blocks
// return to the pool, never to the driver, until the allocator dies or an allocation fails),
// PinnedStaging, page-locked host buffers for asynchronous host<->device copies, and
// PinnedHostBuffer, the backend's allocate_host. Internal to src/backend/cuda.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "owt/backend/cuda.h"
#include "owt/backend/host_buffer.h"
#include "owt/core/tensor.h"

namespace owt {

// One device's cache. Every op of a backend runs on one stream, so a block freed by the host
// while kernels still read it can be reused at once: the next user is queued behind them.
// (Work on another stream, NCCL's, is ordered with events by its owner before a buffer dies.)
class DeviceAllocator : public std::enable_shared_from_this<DeviceAllocator> {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // A Buffer whose deleter returns the block to this cache (the deleter keeps it alive).
  std::shared_ptr<Buffer> allocate(size_t bytes);
  // Returns every cached free block to the driver (waits for the device first).
  void empty_cache();
  CudaMemoryStats stats() const;
  void reset_peak();
  // Called (outside the lock) with each block handed back, before anyone may reuse it.
  void set_release_hook(std::function<void(void*, size_t)> hook);

  // Size classes: 512-byte steps below 1 MiB; above, eight classes per power of two (a block
  // is at most 12.5% larger than asked), so batches of nearby sizes share blocks.
  static size_t rounded(size_t bytes);
  // The largest free block a request of class `size` may take: changing shapes (the last
  // partial batch, evaluation) reuse the training step's blocks instead of growing the pool.
  static size_t reuse_limit(size_t size) { return 2 * size; }

 private:
  void release(void* p, size_t size);
  void free_cached_locked();

  int device_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // block size -> free block, best fit by lower_bound
  CudaMemoryStats stats_;
  std::function<void(void*, size_t)> release_hook_;
};

// Makes `device` current for the calling thread while alive, then restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Page-locked staging for from_host / to_host: a ring of two grow-only buffers, each guarded
// by an event recorded after the copy that last used it, so one upload can be in flight
// while the host fills the other buffer (an input batch and its labels, back to back).
class PinnedStaging {
 public:
  PinnedStaging() = default;
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // A pinned buffer of at least `bytes` that no queued copy still uses. Call `used(stream)`
  // after queueing the copy that reads or writes it.
  void* acquire(size_t bytes);
  void used(cudaStream_t stream);

 private:
  struct Slot {
    void* ptr = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;
    bool pending = false;
  };
  Slot slots_[2];
  int next_ = 0, current_ = -1;
};

// CudaBackend::allocate_host: page-locked memory (portable: every context sees it pinned) and
// an event that CudaBackend::upload records after each copy it queues from the buffer, so that
// wait_unused() waits for exactly those copies. Driven by one thread (the backend's) and read
// by one stream: one event covers the last upload only, so two backends must not share one.
class PinnedHostBuffer final : public HostBuffer {
 public:
  // Allocates under `device` (the backend's), where its event lives too.
  static std::shared_ptr<PinnedHostBuffer> make(int device, size_t bytes);
  ~PinnedHostBuffer() override;  // waits for the last upload, then frees; never throws

  int device() const { return device_; }
  // The copy just queued on `stream` reads this buffer.
  void used(cudaStream_t stream);
  void wait_unused() override;

 private:
  PinnedHostBuffer(void* data, size_t bytes, int device, cudaEvent_t done)
      : HostBuffer(data, bytes), device_(device), done_(done) {}

  int device_;
  cudaEvent_t done_;
  bool pending_ = false;  // an upload recorded on done_ may still run
};

}  // namespace owt
