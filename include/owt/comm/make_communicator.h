// Choosing the process's communicator in either build: local (K = 1) for a plain
// `owt train`, MPI when launched under mpirun/srun. Nothing here needs MPI headers.
#pragma once
#include <memory>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"

namespace owt {

// True when this process was started by an MPI launcher (Open MPI's OMPI_COMM_WORLD_SIZE,
// PMIx's PMIX_RANK, or PMI_SIZE from MPICH/Hydra or Slurm).
bool launched_under_mpi();

// True when owt was built with the MPI communicator (OWT_WITH_MPI).
bool built_with_mpi();

// The communicator over every worker of this job. Not launched under MPI: the local
// communicator, and MPI is never touched. Launched under MPI: an MPI communicator that
// initialises MPI if needed and finalises it when destroyed. Launched under MPI but built
// without it: owt::Error saying so.
std::unique_ptr<Communicator> make_world_communicator();

// The communicator for tensors on `backend`, made once the backend is chosen (the world
// communicator exists before: it is what tells a process its rank, hence its GPU). For a CUDA
// backend and more than one worker: an NCCL communicator over the ranks of `world` (host
// buffers still travel through `world`); collective over `world`. Otherwise nullptr, which
// means: use `world` itself. A CUDA backend with several workers in a build without NCCL is
// an owt::Error (MPI cannot read device memory).
std::unique_ptr<Communicator> make_device_communicator(Communicator& world, Backend& backend);

}  // namespace owt
