// owt_abort_probe: rank K-1 calls abort_all("probe failure", 3) while every other rank
// blocks in an all_reduce it never joins. Under mpirun every rank must end within seconds.
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "owt/comm/mpi_communicator.h"

int main() {
  owt::MpiSession session;
  auto comm = owt::make_mpi_communicator();
  if (comm->rank() == comm->size() - 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the others block
    comm->abort_all("probe failure", 3);
  }
  std::vector<float> buf(4, 1.0f);
  comm->all_reduce(buf.data(), buf.size());  // never completes: rank K-1 is gone
  std::fprintf(stderr, "owt_abort_probe: rank %d passed a collective it should not have\n",
               comm->rank());
  return 0;
}
