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
// MPI_Ireduce_scatter, MPI_Ibcast, MPI_Ireduce; MPI_FLOAT, MPI_SUM); the handle owns the
// request and its count arrays, and wait() is MPI_Wait. A handle destroyed unwaited waits
// in its destructor. Open MPI progresses a collective only inside MPI calls, so overlap
// with computation is partial until wait(). Every MPI call is checked (owt::Error naming the
// call, file, line and MPI's error string). Counts above INT_MAX elements are an error.
//
// Counting (elements_sent, the cost model's convention, DESIGN §4). Per call, on this rank,
// counted when the op is issued; K = size(), r = rank(); everything is 0 when K = 1:
//   all_reduce(n)            n                          (all-reducing a tensor "moves" it)
//   all_gather(counts)       sum over s != r of counts[s]   (elements received from others)
//   reduce_scatter(counts)   sum over s != r of counts[s]   (partial blocks sent to others)
//   broadcast(n, root)       n on the root, 0 elsewhere
//   reduce(n, root)          n on every non-root, 0 on the root
// For K = 2 and even shards every line is also "elements this rank puts on the wire".
//
// Dettmers' example (timdettmers.com 2014/11/09), batch 128, K = 2, a linear layer whose
// weight is 1000x500 in owt's (out, in) layout, i.e. 500 inputs -> 1000 outputs:
//   data parallel: all_reduce of the weight gradient, n = 1000*500 .............. 500000
//   model parallel, output split ("split, then stack"), W^(k) is (500, 500):
//     forward  all_gather of H (128, 1000) by features: receive 128*500 = 64000
//     backward all_reduce of the partial dX (128, 500):       n = 128*500 = 64000  128000
//   model parallel, input split ("split, then add"), W^(k) is (1000, 250):
//     forward  all_reduce of the partial H (128, 1000):      n = 128*1000 = 128000
//     backward all_gather of dX (128, 500) by features: receive 128*250 = 32000   160000
// Dettmers writes the same layer as (in, out) = 1000x500 mapping 1000 -> 500; in his
// naming the split "by first dimension" (input split, add) costs 128*500 + 128*500 =
// 128000 and "by second dimension" (output split, stack) 128*250 + 128*1000 = 160000. The
// convention is the same; only the reading of "1000x500" differs. If the layer below is
// itself feature-sharded, the backward all_reduce becomes a reduce_scatter and costs only
// the other ranks' blocks (here 128*250 = 32000).
std::unique_ptr<Communicator> make_mpi_communicator(std::shared_ptr<MpiSession> session = nullptr);

}  // namespace owt
