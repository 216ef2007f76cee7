// `owt bench --comm`: times each collective the training step uses over the job's communicator
// at message sizes from 4 KiB to 256 MiB per rank, and fits latency + bytes x seconds-per-byte.
#pragma once
#include <cstddef>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/parallel/comm_fit.h"

namespace owt {

struct CommBenchOptions {
  size_t min_bytes = size_t{4} << 10;    // per rank (comm_fit.h says what "per rank" is per op)
  size_t max_bytes = size_t{256} << 20;
  int size_step = 4;                     // each size is this many times the last
};

// Per op (all-reduce, all-gather, reduce-scatter, broadcast, reduce), the median seconds at each
// size (the slowest rank's median over repetitions, every rank starting together after a
// barrier) and their fit, and the overlap of an asynchronous all-reduce with gemms
// (CommCalibration::overlap). Collective: every rank calls it with the same options; every
// rank gets the same result. Buffers live on `backend` (device memory for NCCL), zero-filled.
CommCalibration run_comm_benchmark(Communicator& comm, Backend& backend, const CommBenchOptions& opt);

}  // namespace owt
