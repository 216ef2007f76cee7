// test::world(): one world communicator per test program, released by a test environment's
// TearDown, i.e. before MPI_Finalize (a function-level static would outlive it and leak its
// duplicated communicator).
#include "support/world_comm.h"

#include <gtest/gtest.h>

#include <memory>

#include "owt/comm/make_communicator.h"

namespace owt::test {
namespace {

std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> comm;
  return comm;
}

class ReleaseWorld : public ::testing::Environment {
 public:
  void TearDown() override { world_slot().reset(); }
};

// Registered when this file is linked, i.e. when a test program calls world().
const ::testing::Environment* const kReleaseWorld = ::testing::AddGlobalTestEnvironment(new ReleaseWorld);

}  // namespace

Communicator& world() {
  if (!world_slot()) world_slot() = make_world_communicator();
  return *world_slot();
}

}  // namespace owt::test
