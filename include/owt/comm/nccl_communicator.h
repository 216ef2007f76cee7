// The NCCL communicator: collectives on CUDA tensors, one process per GPU, over the same ranks
// as an existing world communicator (MPI for several workers; the local one for K = 1, which
// needs no MPI). It lives in the CUDA plugin libowt_cuda.so (src/comm/nccl), reached through
// make_communicator.cpp; this header has no CUDA or NCCL types. Code that must work in every
// build uses make_communicator.h instead.
#pragma once
#include <memory>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"

namespace owt {

// Rank 0 makes the ncclUniqueId and broadcasts it through `world` (collective: every rank of
// `world` must call this); each rank then joins with ncclCommInitRank on the backend's device.
// `world` and `backend` must outlive the communicator. Throws owt::Error in a build without
// CUDA or when the plugin cannot be loaded.
//
// Ordering. Every collective runs on the communicator's own stream: issuing one records an
// event on the backend's compute stream and makes the comm stream wait for it (so the op sees
// everything queued before it), then records a completion event. The handle's wait() makes the
// compute stream wait for that event and returns without blocking the host: later ops on the
// backend see the result, and compute queued between issue and wait() overlaps the transfer
// (bucketed gradient all-reduce, pipelined transition). Host-visible results go through
// Backend::to_host, which waits for the compute stream.
//
// Host buffers (the loss's row statistics, checkpoint gathers) cannot go through NCCL: a
// pointer that cudaPointerGetAttributes does not report as device or managed memory makes the
// op fall through to `world` (MPI), synchronously-issued there as in an all-CPU run.
//
// NCCL has no variable-count all-gather or reduce-scatter. Equal counts use ncclAllGather /
// ncclReduceScatter; unequal counts use one ncclGroupStart/End of K ncclBroadcast (all_gather)
// or K ncclReduce (reduce_scatter) calls, one per owner block, so no padding and no extra copy.
// An in-place reduce_scatter (send == recv, result at the start) reduces into NCCL's in-place
// slot (equal counts) or a temporary block, then copies to the start on the comm stream.
//
// Counting (elements_sent) is exactly the MPI communicator's (mpi_communicator.h), for device
// and host buffers alike, so the cost model reads the same numbers on either path.
//
// abort_all: ncclCommAbort (so no rank hangs in a collective), then world.abort_all
// (MPI_Abort). The destructor uses ncclCommAbort instead of ncclCommDestroy while an exception
// is unwinding, since the other ranks may never reach the matching call.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& world, Backend& backend);

}  // namespace owt
