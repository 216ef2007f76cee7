// The world communicator of a test program run under mpirun: made on first use, released by a
// gtest Environment before main() ends the MPI session.
#pragma once
#include "owt/comm/communicator.h"

namespace owt::test {

// The world communicator (MPI under mpirun; the local one in a single process).
Communicator& world();

}  // namespace owt::test
