// Options shared by several subcommands: the OpenMP thread count and the --device backend.
#include <omp.h>

#include <cstdlib>
#include <thread>

#include "commands.h"
#include "owt/backend/backend.h"
#include "owt/core/error.h"

namespace owt {

void set_thread_count(int threads) {
  if (threads <= 0) {
    // Share the cores of this node between the workers mpirun started on it.
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int ranks = local ? std::max(1, std::atoi(local)) : 1;
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks);
  }
  omp_set_num_threads(threads);
}

std::unique_ptr<Backend> make_backend_for(const std::string& device, bool announce) {
  if (device == "cuda")
    throw Error("--device cuda: this owt was built without the CUDA backend");
  return make_cpu_backend();
}

}  // namespace owt
