// make_world_communicator: local for a plain run, MPI under mpirun, a clear error when
// launched under mpirun but built without MPI; make_device_communicator: NCCL for CUDA tensors.
// The one #ifdef OWT_HAVE_MPI / OWT_HAVE_NCCL outside comm/mpi and comm/nccl.
#include "owt/comm/make_communicator.h"

#include <cstdlib>

#include "owt/core/error.h"
#ifdef OWT_HAVE_MPI
#include "owt/comm/mpi_communicator.h"
#endif
#ifdef OWT_HAVE_NCCL
#include "owt/comm/nccl_communicator.h"
#endif

namespace owt {

namespace {
const char* const launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
}

bool launched_under_mpi() {
  for (const char* var : launcher_vars)
    if (std::getenv(var) != nullptr) return true;
  return false;
}

bool built_with_mpi() {
#ifdef OWT_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_world_communicator() {
  if (!launched_under_mpi()) return make_local_communicator();
#ifdef OWT_HAVE_MPI
  return make_mpi_communicator(std::make_shared<MpiSession>());
#else
  const char* var = nullptr;
  for (const char* v : launcher_vars)
    if (std::getenv(v) != nullptr) { var = v; break; }
  throw Error(cat("owt was launched by an MPI launcher (", var, " is set) but built without MPI; "
                  "rebuild with -DOWT_WITH_MPI=ON (needs an MPI installation), or run it "
                  "without mpirun for one worker"));
#endif
}

std::unique_ptr<Communicator> make_device_communicator(Communicator& world, Backend& backend) {
  if (backend.device() != Device::CUDA || world.size() == 1) return nullptr;
#ifdef OWT_HAVE_NCCL
  return make_nccl_communicator(world, backend);
#else
  throw Error(cat("--device cuda with ", world.size(), " workers needs the NCCL communicator, "
                  "and this owt was built without it (it needs both OWT_WITH_CUDA and "
                  "OWT_WITH_MPI); run one worker, or use --device cpu"));
#endif
}

}  // namespace owt
