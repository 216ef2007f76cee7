// Choosing the process's communicator in either build: local (K = 1) for a plain
// `owt train`, MPI when launched under mpirun/srun. Nothing here needs MPI headers.
#pragma once
#include <memory>

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

}  // namespace owt
