// Communicator: the collectives owt uses (docs/ARCHITECTURE.md), sum-reduction on float32, each with an
// async form. K = 1 is a real implementation that moves nothing. Counts elements per op kind.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "owt/core/shard.h"

namespace owt {

// Send: point-to-point messages (send/recv), counted by the sender.
enum class CommOp { AllReduce = 0, AllGather, ReduceScatter, Broadcast, Reduce, Send, Count };
const char* comm_op_name(CommOp op);

// A collective in flight; wait() blocks until its buffers may be touched. test() lets the
// library make progress without blocking (MPI moves non-blocking collectives forward only
// inside MPI calls) and says whether the collective is complete.
class CommHandle {
 public:
  virtual ~CommHandle() = default;
  virtual void wait() = 0;
  virtual bool test() { return false; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;

  // buf (n) summed over all ranks, in place.
  virtual std::unique_ptr<CommHandle> all_reduce_async(float* buf, size_t n) = 0;
  // recv = concat over ranks r of rank r's `counts[r]` elements; send holds counts[rank()].
  virtual std::unique_ptr<CommHandle> all_gather_async(const float* send, float* recv,
                                                       const std::vector<size_t>& counts) = 0;
  // send = concat over ranks of blocks of counts[r]; recv (counts[rank()]) = sum over ranks
  // of block rank().
  virtual std::unique_ptr<CommHandle> reduce_scatter_async(const float* send, float* recv,
                                                           const std::vector<size_t>& counts) = 0;
  virtual std::unique_ptr<CommHandle> broadcast_async(float* buf, size_t n, int root) = 0;
  // buf (n) summed over ranks into root's buf; other ranks' buf is left unchanged.
  virtual std::unique_ptr<CommHandle> reduce_async(float* buf, size_t n, int root) = 0;
  // Point-to-point, between two ranks only (not collective): rank `dest` posts the matching
  // recv_async(buf, n, rank()) with the same n. Messages between one pair of ranks arrive in
  // the order they were sent. A peer must be another rank. The sender counts n (CommOp::Send).
  // Pure, like every op here: an out-of-line default would make communicator.cpp the home of
  // the class's typeinfo, which the CUDA plugin (libowt_cuda.so) and the fuzz build lack.
  virtual std::unique_ptr<CommHandle> send_async(const float* buf, size_t n, int dest) = 0;
  virtual std::unique_ptr<CommHandle> recv_async(float* buf, size_t n, int source) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `message` printed once; never returns.
  [[noreturn]] virtual void abort_all(const std::string& message, int exit_code) = 0;

  // Blocking forms.
  void all_reduce(float* buf, size_t n) { all_reduce_async(buf, n)->wait(); }
  void all_gather(const float* send, float* recv, const std::vector<size_t>& counts) {
    all_gather_async(send, recv, counts)->wait();
  }
  void reduce_scatter(const float* send, float* recv, const std::vector<size_t>& counts) {
    reduce_scatter_async(send, recv, counts)->wait();
  }
  void broadcast(float* buf, size_t n, int root) { broadcast_async(buf, n, root)->wait(); }
  void reduce(float* buf, size_t n, int root) { reduce_async(buf, n, root)->wait(); }
  void send(const float* buf, size_t n, int dest) { send_async(buf, n, dest)->wait(); }
  void recv(float* buf, size_t n, int source) { recv_async(buf, n, source)->wait(); }

  // Elements this rank sent, per op kind, by the cost model's convention (docs/ARCHITECTURE.md, "Communication and costs").
  uint64_t elements_sent(CommOp op) const { return sent_[static_cast<int>(op)]; }
  uint64_t total_elements_sent() const;
  void reset_counters() { sent_.fill(0); }

 protected:
  void count(CommOp op, uint64_t elements) { sent_[static_cast<int>(op)] += elements; }

 private:
  std::array<uint64_t, static_cast<int>(CommOp::Count)> sent_{};
};

// The single-worker communicator: every collective is the identity (or a copy).
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace owt
