// Communicator pieces shared by every implementation: op names, the counter total, and the
// base class's point-to-point (none: an implementation without it throws).
// The collectives themselves live in local_communicator.cpp, mpi/ and nccl/.
#include "owt/comm/communicator.h"


namespace owt {

const char* comm_op_name(CommOp op) {
  switch (op) {
    case CommOp::AllReduce: return "all_reduce";
    case CommOp::AllGather: return "all_gather";
    case CommOp::ReduceScatter: return "reduce_scatter";
    case CommOp::Broadcast: return "broadcast";
    case CommOp::Reduce: return "reduce";
    case CommOp::Send: return "send";
    case CommOp::Count: break;
  }
  return "unknown";
}

uint64_t Communicator::total_elements_sent() const {
  uint64_t total = 0;
  for (uint64_t n : sent_) total += n;
  return total;
}

}  // namespace owt
