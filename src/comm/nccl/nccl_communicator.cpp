// The NCCL communicator (see include/owt/comm/nccl_communicator.h): collectives on a private
// comm stream ordered against the backend's compute stream with events, host buffers handed to
// the world communicator, element counting as the MPI communicator's. Compiled into the CUDA
// plugin (cmake/cuda.cmake), which exports owt_nccl_communicator_new (nccl_entry.h).
#include "owt/comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <exception>

#include "nccl_entry.h"
#include "owt/backend/cuda.h"
#include "owt/core/error.h"

#define OWT_NCCL_CHECK(call)                                                               \
  do {                                                                                     \
    ncclResult_t owt_rc_ = (call);                                                         \
    if (owt_rc_ != ncclSuccess)                                                            \
      throw ::owt::Error(::owt::cat("NCCL error in ", #call, " at ", __FILE__, ":", __LINE__, \
                                    ": ", ncclGetErrorString(owt_rc_)));                   \
  } while (0)

#define OWT_CUDA_CHECK(call)                                                               \
  do {                                                                                     \
    cudaError_t owt_rc_ = (call);                                                          \
    if (owt_rc_ != cudaSuccess)                                                            \
      throw ::owt::Error(::owt::cat("CUDA error in ", #call, " at ", __FILE__, ":", __LINE__, \
                                    ": ", cudaGetErrorString(owt_rc_)));                   \
  } while (0)

namespace owt {
namespace {

bool on_device(const void* p) {
  if (p == nullptr) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();  // an unregistered host pointer on old runtimes
    return false;
  }
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

// A collective queued on the comm stream; wait() orders the compute stream after it.
class NcclHandle : public CommHandle {
 public:
  NcclHandle(cudaEvent_t done, cudaStream_t compute, std::shared_ptr<Buffer> temp)
      : done_(done), compute_(compute), temp_(std::move(temp)) {}
  ~NcclHandle() override {
    if (!waited_) cudaStreamWaitEvent(compute_, done_, 0);  // no throw here
    cudaEventDestroy(done_);
  }
  void wait() override {
    if (waited_) return;
    waited_ = true;
    OWT_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
  }
  // NCCL progresses on its own stream; this only reports whether the collective finished.
  // cudaEventQuery's "not ready" is also left as the thread's last error, which the next
  // kernel launch check would report as its own failure: it is cleared here. A real error
  // is thrown.
  bool test() override {
    const cudaError_t rc = cudaEventQuery(done_);
    if (rc == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    OWT_CUDA_CHECK(rc);
    return true;
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
  std::shared_ptr<Buffer> temp_;  // lives until the op is complete for the compute stream
  bool waited_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(Communicator& world, Backend& backend)
      : world_(world), backend_(backend), rank_(world.rank()), size_(world.size()) {
    compute_ = static_cast<cudaStream_t>(cuda_stream_of(backend));
    OWT_CUDA_CHECK(cudaSetDevice(cuda_device_of(backend)));
    try {
      int least = 0, greatest = 0;
      OWT_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
      OWT_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest));
      OWT_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));

      // The unique id travels as raw bytes inside a float broadcast (MPI copies them verbatim).
      ncclUniqueId id;
      std::memset(&id, 0, sizeof id);
      if (rank_ == 0) OWT_NCCL_CHECK(ncclGetUniqueId(&id));
      float words[(sizeof(ncclUniqueId) + sizeof(float) - 1) / sizeof(float)] = {};
      std::memcpy(words, &id, sizeof id);
      world_.broadcast(words, sizeof words / sizeof(float), 0);
      std::memcpy(&id, words, sizeof id);
      OWT_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    } catch (...) {
      release(true);  // no destructor runs for a constructor that throws
      throw;
    }
  }

  ~NcclCommunicator() override { release(std::uncaught_exceptions() > 0); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  std::unique_ptr<CommHandle> all_reduce_async(float* buf, size_t n) override {
    if (size_ > 1) count(CommOp::AllReduce, n);
    if (!on_device(buf)) return world_.all_reduce_async(buf, n);
    begin();
    writes(buf, n);
    OWT_NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm_, stream_));
    return finish();
  }

  std::unique_ptr<CommHandle> all_gather_async(const float* send, float* recv,
                                               const std::vector<size_t>& counts) override {
    check_counts(counts, "all_gather");
    count(CommOp::AllGather, others(counts));
    if (!device_pair(send, recv, "all_gather")) return world_.all_gather_async(send, recv, counts);
    begin();
    std::vector<size_t> displs = offsets(counts);
    writes(recv, displs.back() + counts.back());
    if (equal(counts)) {
      OWT_NCCL_CHECK(ncclAllGather(send, recv, counts[0], ncclFloat, comm_, stream_));
    } else {
      OWT_NCCL_CHECK(ncclGroupStart());
      for (int r = 0; r < size_; ++r) {
        if (counts[r] == 0) continue;
        const float* src = r == rank_ ? send : recv + displs[r];
        OWT_NCCL_CHECK(ncclBroadcast(src, recv + displs[r], counts[r], ncclFloat, r, comm_, stream_));
      }
      OWT_NCCL_CHECK(ncclGroupEnd());
    }
    return finish();
  }

  std::unique_ptr<CommHandle> reduce_scatter_async(const float* send, float* recv,
                                                   const std::vector<size_t>& counts) override {
    check_counts(counts, "reduce_scatter");
    count(CommOp::ReduceScatter, others(counts));
    if (!device_pair(send, recv, "reduce_scatter"))
      return world_.reduce_scatter_async(send, recv, counts);
    begin();
    std::vector<size_t> displs = offsets(counts);
    const size_t mine = counts[rank_];
    writes(recv, send == recv ? displs.back() + counts.back() : mine);  // in place: all of it
    std::shared_ptr<Buffer> temp;
    if (equal(counts)) {
      // In place, NCCL's result slot is this rank's block; it then moves to the start.
      float* out = send == recv ? recv + displs[rank_] : recv;
      OWT_NCCL_CHECK(ncclReduceScatter(send, out, mine, ncclFloat, ncclSum, comm_, stream_));
      if (out != recv && mine)
        OWT_CUDA_CHECK(cudaMemcpyAsync(recv, out, mine * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
    } else {
      float* out = recv;
      if (send == recv && mine) {
        temp = backend_.allocate(mine * sizeof(float));
        out = static_cast<float*>(temp->ptr);
      }
      OWT_NCCL_CHECK(ncclGroupStart());
      for (int r = 0; r < size_; ++r) {
        if (counts[r] == 0) continue;
        // recvbuff is written only on the root; elsewhere NCCL ignores it (a valid pointer
        // all the same, so no argument check can object).
        OWT_NCCL_CHECK(ncclReduce(send + displs[r], out, counts[r], ncclFloat, ncclSum, r, comm_,
                                  stream_));
      }
      OWT_NCCL_CHECK(ncclGroupEnd());
      if (out != recv)
        OWT_CUDA_CHECK(cudaMemcpyAsync(recv, out, mine * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
    }
    return finish(std::move(temp));
  }

  std::unique_ptr<CommHandle> broadcast_async(float* buf, size_t n, int root) override {
    check_root(root, "broadcast");
    if (size_ > 1 && rank_ == root) count(CommOp::Broadcast, n);
    if (!on_device(buf)) return world_.broadcast_async(buf, n, root);
    begin();
    writes(buf, n);
    OWT_NCCL_CHECK(ncclBroadcast(buf, buf, n, ncclFloat, root, comm_, stream_));
    return finish();
  }

  std::unique_ptr<CommHandle> reduce_async(float* buf, size_t n, int root) override {
    check_root(root, "reduce");
    if (rank_ != root) count(CommOp::Reduce, n);
    if (!on_device(buf)) return world_.reduce_async(buf, n, root);
    begin();
    // On a non-root rank recvbuff is ignored, so buf is left unchanged there.
    if (rank_ == root) writes(buf, n);
    OWT_NCCL_CHECK(ncclReduce(buf, buf, n, ncclFloat, ncclSum, root, comm_, stream_));
    return finish();
  }

  // Device buffers: each ncclSend / ncclRecv runs alone on the one comm stream, so it blocks
  // that stream until the peer posts its match; two ranks that both send to each other before
  // receiving would wait forever. Post in matching order (today only host buffers, the
  // checkpoint's pieces, travel point to point, and they go through `world_`).
  std::unique_ptr<CommHandle> send_async(const float* buf, size_t n, int dest) override {
    check_peer(dest, "send");
    count(CommOp::Send, n);
    if (!on_device(buf)) return world_.send_async(buf, n, dest);
    begin();
    OWT_NCCL_CHECK(ncclSend(buf, n, ncclFloat, dest, comm_, stream_));
    return finish();
  }

  std::unique_ptr<CommHandle> recv_async(float* buf, size_t n, int source) override {
    check_peer(source, "recv");
    if (!on_device(buf)) return world_.recv_async(buf, n, source);
    begin();
    writes(buf, n);
    OWT_NCCL_CHECK(ncclRecv(buf, n, ncclFloat, source, comm_, stream_));
    return finish();
  }

  void barrier() override { world_.barrier(); }

  [[noreturn]] void abort_all(const std::string& message, int exit_code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    world_.abort_all(message, exit_code);
    std::_Exit(exit_code);  // abort_all does not return; this is for the compiler
  }

 private:
  // Aborts (while an exception unwinds) or destroys the NCCL communicator, then the stream and
  // event. Never throws.
  void release(bool failing) {
    if (comm_) {
      if (failing) {
        ncclCommAbort(comm_);
      } else {
        cudaStreamSynchronize(stream_);
        ncclCommDestroy(comm_);
      }
      comm_ = nullptr;
    }
    if (ready_) cudaEventDestroy(ready_);
    if (stream_) cudaStreamDestroy(stream_);
    ready_ = nullptr;
    stream_ = nullptr;
    cudaGetLastError();
  }

  // The comm stream waits for everything queued on the compute stream so far.
  void begin() {
    OWT_CUDA_CHECK(cudaEventRecord(ready_, compute_));
    OWT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
  }
  std::unique_ptr<CommHandle> finish(std::shared_ptr<Buffer> temp = nullptr) {
    cudaEvent_t done = nullptr;
    OWT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    auto handle = std::make_unique<NcclHandle>(done, compute_, std::move(temp));  // owns done
    OWT_CUDA_CHECK(cudaEventRecord(done, stream_));
    return handle;
  }
  // `n` floats at `p` are about to be written on the comm stream: the backend forgets what it
  // derived from them (bf16 operand copies of a buffer that the step reuses, such as the
  // transition's gradient rows).
  void writes(const float* p, size_t n) { cuda_written_outside(backend_, p, n * sizeof(float)); }

  // Both on the device (NCCL), both on the host (MPI); a mix is a caller's bug.
  bool device_pair(const float* send, const float* recv, const char* op) const {
    bool s = on_device(send), r = on_device(recv);
    if (s != r)
      throw Error(cat(op, ": send and receive buffers must both be on the device or both on the "
                      "host"));
    return s;
  }
  void check_counts(const std::vector<size_t>& counts, const char* op) const {
    if (counts.size() != static_cast<size_t>(size_))
      throw Error(cat(op, ": counts has ", counts.size(), " entries, expected ", size_,
                      " (one per rank)"));
  }
  void check_root(int root, const char* op) const {
    if (root < 0 || root >= size_)
      throw Error(cat(op, ": root ", root, " out of range for ", size_, " ranks"));
  }
  void check_peer(int peer, const char* op) const {
    if (peer < 0 || peer >= size_ || peer == rank_)
      throw Error(cat(op, ": peer ", peer, " out of range for ", size_, " ranks (or this rank)"));
  }
  static bool equal(const std::vector<size_t>& counts) {
    for (size_t c : counts)
      if (c != counts[0]) return false;
    return true;
  }
  static std::vector<size_t> offsets(const std::vector<size_t>& counts) {
    std::vector<size_t> d(counts.size());
    size_t off = 0;
    for (size_t r = 0; r < counts.size(); ++r) d[r] = off, off += counts[r];
    return d;
  }
  uint64_t others(const std::vector<size_t>& counts) const {
    uint64_t total = 0;
    for (int r = 0; r < size_; ++r)
      if (r != rank_) total += counts[r];
    return total;
  }

  Communicator& world_;
  Backend& backend_;
  int rank_, size_;
  cudaStream_t compute_ = nullptr, stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

// Inside the plugin: the real one (hidden); the program's forwards here (make_communicator.cpp).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& world, Backend& backend) {
  return std::make_unique<NcclCommunicator>(world, backend);
}

}  // namespace owt

extern "C" __attribute__((visibility("default"))) owt::Communicator* owt_nccl_communicator_new(
    owt::Communicator& world, owt::Backend& backend) {
  return owt::make_nccl_communicator(world, backend).release();
}
