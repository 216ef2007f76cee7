// The MPI communicator (CPU tensors, one process per worker) and MpiSession, the RAII owner
// of MPI_Init_thread / MPI_Finalize. Only built with OWT_WITH_MPI; this header never
// includes <mpi.h>. Code that must work in both builds uses make_communicator.h instead.
#pragma once
#include <memory>

#include "owt/comm/communicator.h"

namespace owt {

// MPI for the lifetime of this object: MPI_Init_thread(MPI_THREAD_FUNNELED) in the
// constructor, MPI_Finalize in the destructor. If MPI is already initialised (by another
// session or the host program) it neither initialises nor finalises. Only the thread that
// made the session may call a communicator (FUNNELED); OpenMP threads inside ops are fine.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }

 private:
  bool owns_ = false;
  int world_rank_ = 0;
  int world_size_ = 1;
};

// A communicator over all processes of the job (a duplicate of MPI_COMM_WORLD, so owt's
// traffic never matches anyone else's). MPI must be initialised: pass the session to keep
// it alive for as long as the communicator (it then finalises after the communicator is
// freed), or hold an MpiSession yourself for longer than the communicator.
//
// Ops are MPI non-blocking collectives (MPI_Iallreduce, MPI_Iallgatherv,
// MPI_Ireduce_scatter, MPI_Ibcast, MPI_Ireduce; MPI_FLOAT, MPI_SUM), and point-to-point
// MPI_Isend/MPI_Irecv with one tag (ordered per pair of ranks); the handle owns the
// request and its count arrays, and wait() is MPI_Wait. A handle destroyed unwaited waits
// in its destructor. Open MPI progresses a collective only inside MPI calls, so overlap
// with computation is partial until wait(). Every MPI call is checked (owt::Error naming the
// call, file, line and MPI's error string). Counts above INT_MAX elements are an error.
//
// Counting (elements_sent; the convention of the cost model, src/parallel/cost_model.cpp, and
// docs/ARCHITECTURE.md, "Communication and costs"). Per call, exactly, on this rank r of K,
// counted when the op is issued: the elements this rank's link carries under the
// bandwidth-optimal (ring) algorithm, i.e. what it receives for gather-like ops and what it sends for reduce-like ops:
//   all_gather(counts)       total - counts[r]       (the other ranks' blocks, received)
//   reduce_scatter(counts)   total - counts[r]       (partial blocks for the others, sent)
//   all_reduce(n)            2 * (n - shard_counts(n, K)[r])  (= reduce_scatter + all_gather)
//   broadcast(n, root)       n on every non-root (received), 0 on the root
//   reduce(n, root)          n on every non-root (sent), 0 on the root
//   send(n, dest)            n on the sender (MPI_Isend), 0 on the receiver (MPI_Irecv)
// Everything is 0 when K = 1. Averaged over ranks these are exactly the cost model's
// per-worker figures: all_reduce 2n(K-1)/K, all_gather and reduce_scatter total(K-1)/K,
// broadcast and reduce n(K-1)/K. (Per rank they differ by at most 2 elements per call when
// K does not divide n.) K broadcasts of b-row blocks (the pipelined transition) count the
// same as one all_gather of those blocks, because the same data moves.
//
// Dettmers' example (timdettmers.com 2014/11/09): batch 128, K = 2, so every op above
// counts what this rank sends, and all_reduce(n) counts n. A linear layer with weight
// 1000x500 in owt's (out, in) layout, i.e. 500 inputs -> 1000 outputs:
//   data parallel: all_reduce of the weight gradient, n = 1000*500 ............. 500000
//   model parallel, output split ("split, then stack"), W^(k) is (500, 500):
//     forward  all_gather of H (128, 1000) by features: receive 128*500 = 64000
//     backward all_reduce of the partial dX (128, 500):  2*(64000 - 32000) = 64000  128000
//   model parallel, input split ("split, then add"), W^(k) is (1000, 250):
//     forward  all_reduce of the partial H (128, 1000): 2*(128000 - 64000) = 128000
//     backward all_gather of dX (128, 500) by features: receive 128*250 = 32000   160000
// Dettmers writes the same weight as (in, out) = 1000x500, a layer 1000 -> 500; in his
// naming the split "by first dimension" (input split, add) costs 128*500 + 128*500 =
// 128000 and "by second dimension" (output split, stack) 128*250 + 128*1000 = 160000: the
// same convention, only "1000x500" is read the other way round. If the layer below is
// itself feature-sharded, the backward all_reduce becomes a reduce_scatter and costs only
// the other rank's block (here 128*250 = 32000).
std::unique_ptr<Communicator> make_mpi_communicator(std::shared_ptr<MpiSession> session = nullptr);

}  // namespace owt
