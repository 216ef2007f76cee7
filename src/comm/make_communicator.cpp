// make_world_communicator: local for a plain run, MPI under mpirun, a clear error when
// launched under mpirun but built without MPI; make_device_communicator: NCCL for CUDA tensors,
// from the CUDA plugin (nccl/nccl_entry.h). The one #ifdef OWT_HAVE_MPI outside comm/mpi.
#include "owt/comm/make_communicator.h"

#include <cstdlib>

#include "nccl/nccl_entry.h"
#include "owt/backend/cuda.h"
#include "owt/comm/nccl_communicator.h"
#include "owt/core/error.h"
#ifdef OWT_HAVE_MPI
#include "owt/comm/mpi_communicator.h"
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
  return make_nccl_communicator(world, backend);
}

// The program's make_nccl_communicator: the plugin's, found by name. A CUDA backend exists
// only when the plugin is loaded, so this never loads it for nothing; in a build without CUDA
// cuda_plugin_symbol throws "built without the CUDA backend".
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& world, Backend& backend) {
  auto entry = reinterpret_cast<NcclEntry>(cuda_plugin_symbol(OWT_NCCL_ENTRY));
  return std::unique_ptr<Communicator>(entry(world, backend));
}

}  // namespace owt
