// The NCCL communicator's entry point in the CUDA plugin libowt_cuda.so: defined in
// nccl_communicator.cpp, found by name through cuda_plugin_symbol by make_communicator.cpp
// (owt itself never links NCCL). No CUDA or NCCL types.
#pragma once
#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"

#define OWT_NCCL_ENTRY "owt_nccl_communicator_new"

// make_nccl_communicator(world, backend).release(); throws what it throws.
extern "C" owt::Communicator* owt_nccl_communicator_new(owt::Communicator& world,
                                                       owt::Backend& backend);

namespace owt {
using NcclEntry = decltype(&owt_nccl_communicator_new);
}  // namespace owt
